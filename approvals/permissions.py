"""Who may see and act on a pause packet (DESIGN section 5), through guardian's direct tables."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from guardian.core import ObjectPermissionChecker

from approvals.models import (
    PausePacket,
    PausePacketGroupObjectPermission,
    PausePacketUserObjectPermission,
    ServiceAccount,
)

VIEW = "view_pausepacket"
RESUME = "resume_pausepacket"
PACKET_PERMISSIONS = (VIEW, RESUME)
# See, comment, reject and take over: what owning an execution gives (DESIGN section 5).
# Approving and reconciling stay with the route the policy names, so owning an execution never
# lets a team approve what a policy sends to another.
OWNER_PERMISSIONS = (VIEW,)

UNKNOWN_OWNER = "names no existing group, user:<name> or service:<name>"


def owner_principal(owner: str):
    """The group or user an owner string names, or None (a service account, an unknown name).

    Never creates anything: an owner string comes from the agent.
    """
    if not owner or owner.startswith("service:"):
        return None
    if owner.startswith("user:"):
        return get_user_model().objects.filter(username=owner.removeprefix("user:")).first()
    return Group.objects.filter(name=owner).first()


def owner_exists(owner: str) -> bool:
    """Whether an owner names an existing group, `user:<name>` or `service:<name>`."""
    if owner.startswith("service:"):
        return ServiceAccount.objects.filter(name=owner.removeprefix("service:")).exists()
    return owner_principal(owner) is not None


def route_group(name: str) -> Group | None:
    """The group a packet's route names (approvers, escalate_to), made on first use.

    A route name is the operator's (GATEKEEPER_DEFAULT_APPROVERS) or an admin's (a policy),
    never an agent's, and the fail-closed route must reach someone on a fresh install: a
    packet routed to a group an admin creates only later would otherwise stay invisible to it.
    """
    if not name:
        return None
    return Group.objects.get_or_create(name=name)[0]


def grant_packet_access(packets: list[PausePacket], grants: list[tuple]) -> None:
    """Give each (principal, permission codenames) pair its permissions on each packet.

    A principal is a group or a user; None (nobody to grant to) is skipped.
    """
    grants = [(principal, codenames) for principal, codenames in grants if principal is not None]
    if not packets or not grants:
        return
    permissions = {
        permission.codename: permission
        for permission in Permission.objects.filter(
            content_type__app_label="approvals", codename__in=PACKET_PERMISSIONS
        )
    }
    group_rows, user_rows = [], []
    for packet in packets:
        for principal, codenames in grants:
            for codename in codenames:
                if isinstance(principal, Group):
                    group_rows.append(
                        PausePacketGroupObjectPermission(
                            group=principal,
                            permission=permissions[codename],
                            content_object=packet,
                        )
                    )
                else:
                    user_rows.append(
                        PausePacketUserObjectPermission(
                            user=principal, permission=permissions[codename], content_object=packet
                        )
                    )
    PausePacketGroupObjectPermission.objects.bulk_create(group_rows, ignore_conflicts=True)
    PausePacketUserObjectPermission.objects.bulk_create(user_rows, ignore_conflicts=True)


def packet_grants(packet: PausePacket, *, owner: str) -> list[tuple]:
    """Who may act on a new packet: its approvers decide it, the execution's owner sees it."""
    return [
        (route_group(packet.approvers), PACKET_PERMISSIONS),
        (owner_principal(owner), OWNER_PERMISSIONS),
    ]


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
    return VIEW in granted, RESUME in granted


def can_view(user, packet: PausePacket) -> bool:
    return packet_authority(user, packet)[0]


def can_resume(user, packet: PausePacket) -> bool:
    return packet_authority(user, packet)[1]


def users_who_may_resume(packet: PausePacket):
    """Active users holding resume permission on the packet, directly or through a group."""
    by_user = PausePacketUserObjectPermission.objects.filter(
        content_object=packet, permission__codename=RESUME
    ).values("user_id")
    by_group = PausePacketGroupObjectPermission.objects.filter(
        content_object=packet, permission__codename=RESUME
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
