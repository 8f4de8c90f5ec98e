"""Who may see and act on a pause packet (DESIGN section 5), through guardian's direct tables."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from guardian.core import ObjectPermissionChecker

from approvals.models import (
    PausePacket,
    PausePacketGroupObjectPermission,
    PausePacketUserObjectPermission,
)

PACKET_PERMISSIONS = ("view_pausepacket", "resume_pausepacket")


def owner_principal(owner: str):
    """The group or user an owner string names, or None (a service account, an unknown user)."""
    if not owner or owner.startswith("service:"):
        return None
    if owner.startswith("user:"):
        return get_user_model().objects.filter(username=owner.removeprefix("user:")).first()
    group, _ = Group.objects.get_or_create(name=owner)
    return group


def grant_packet_access(packets: list[PausePacket], principals: list) -> None:
    """Give each principal (group or user) view and resume permission on each packet."""
    principals = [p for p in principals if p is not None]
    if not packets or not principals:
        return
    permissions = list(
        Permission.objects.filter(
            content_type__app_label="approvals", codename__in=PACKET_PERMISSIONS
        )
    )
    group_rows, user_rows = [], []
    for packet in packets:
        for permission in permissions:
            for principal in principals:
                if isinstance(principal, Group):
                    group_rows.append(
                        PausePacketGroupObjectPermission(
                            group=principal, permission=permission, content_object=packet
                        )
                    )
                else:
                    user_rows.append(
                        PausePacketUserObjectPermission(
                            user=principal, permission=permission, content_object=packet
                        )
                    )
    PausePacketGroupObjectPermission.objects.bulk_create(group_rows, ignore_conflicts=True)
    PausePacketUserObjectPermission.objects.bulk_create(user_rows, ignore_conflicts=True)


def approver_principals(packet: PausePacket, *, owner: str) -> list:
    """The approvers group and the owner (when a group or user): who may act on a new packet."""
    approvers, _ = Group.objects.get_or_create(name=packet.approvers)
    return [approvers, owner_principal(owner)]


def packet_authority(user, packet: PausePacket) -> tuple[bool, bool]:
    """(may view, may resume) the packet, from one read of the user's and groups' grants.

    One guardian checker answers both: `user.has_perm` makes a new checker, and so two reads
    of the grant tables, for each question.
    """
    if not user.is_active:
        return False, False
    if user.is_superuser:
        return True, True
    granted = set(ObjectPermissionChecker(user).get_perms(packet))
    return "view_pausepacket" in granted, "resume_pausepacket" in granted


def can_view(user, packet: PausePacket) -> bool:
    return packet_authority(user, packet)[0]


def can_resume(user, packet: PausePacket) -> bool:
    return packet_authority(user, packet)[1]


def users_who_may_resume(packet: PausePacket):
    """Active users holding resume permission on the packet, directly or through a group."""
    by_user = PausePacketUserObjectPermission.objects.filter(
        content_object=packet, permission__codename="resume_pausepacket"
    ).values("user_id")
    by_group = PausePacketGroupObjectPermission.objects.filter(
        content_object=packet, permission__codename="resume_pausepacket"
    ).values("group_id")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(id__in=by_user) | Q(groups__id__in=by_group))
        .distinct()
        .order_by("username")
    )


def members_of(group_name: str):
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=group_name)
        .order_by("username")
    )
