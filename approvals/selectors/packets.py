"""Reads of packets: which a user may view (the permission read every page applies), one
packet's page, and what approving it would do now."""

import hashlib
from datetime import datetime

from django.contrib.auth.models import Permission, User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals.branch_table import Outcome, decide_approval
from approvals.models import (
    PausePacket,
    PausePacketGroupObjectPermission,
    PausePacketUserObjectPermission,
)
from audit.models import AuditEvent


def packets_visible_to(user) -> QuerySet[PausePacket]:
    """Packets the user may view: superusers all, others through a user or group grant.

    One query with two EXISTS subqueries on guardian's direct-foreign-key tables, so a list of
    any length costs the same.
    """
    packets = PausePacket.objects.all()
    if user.is_superuser:
        return packets
    if not user.is_active:
        return packets.none()
    by_user = PausePacketUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission__codename="view_pausepacket"
    )
    by_group = PausePacketGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"),
        group__user=user,
        permission__codename="view_pausepacket",
    )
    return packets.filter(Exists(by_user) | Exists(by_group))


def view_grants(user) -> tuple[QuerySet, QuerySet]:
    """The user's view grants on packets: given to them, and given to one of their groups.

    The permission and the user's groups are subqueries PostgreSQL runs once per statement, so
    each packet's grant is found in guardian's unique (user or group, permission, object) index
    alone, cheaper than the joins of packets_visible_to. (That function keeps its joins: the
    pages that hash every grant gain nothing this way; bench/PROFILES.md.)
    """
    view = Permission.objects.filter(
        content_type__app_label="approvals", codename="view_pausepacket"
    ).values("id")[:1]
    groups = User.groups.through.objects.filter(user=user).values("group_id")
    return (
        PausePacketUserObjectPermission.objects.filter(user=user, permission=view),
        PausePacketGroupObjectPermission.objects.filter(group__in=groups, permission=view),
    )


def packet_for_user(user, packet_id) -> PausePacket | None:
    return (
        packets_visible_to(user)
        .select_related("execution", "execution__parent", "requested_by", "superseded_by")
        .filter(id=packet_id)
        .first()
    )


def approval_preview(
    packet: PausePacket, *, voters: list[str], now: datetime | None = None
) -> Outcome:
    """What approving would do right now: the branch table, asked without acting."""
    return decide_approval(
        packet.facts(now=now or timezone.now(), votes_with_this_one=len(voters) + 1)
    )


def packet_votes(packet: PausePacket) -> list:
    return list(packet.current_votes().select_related("user"))


def execution_recent_record(packet: PausePacket, limit: int = 12) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(execution_id=packet.execution_id).order_by("-id")[:limit])


def decision_state(status: str, snapshot: str, votes: int) -> str:
    """An opaque tag of what a packet's decision card shows: a page holding the same tag has
    nothing to re-fetch (its reviewer's own action already showed it)."""
    return hashlib.sha256(f"{status}|{snapshot}|{votes}".encode()).hexdigest()[:16]


def decision_states(packet_ids) -> dict[str, str]:
    """decision_state of each packet, by id, in one query."""
    rows = (
        PausePacket.objects.filter(id__in=packet_ids)
        .annotate(votes_now=Count("votes", filter=Q(votes__snapshot_hash=F("snapshot_hash"))))
        .values_list("id", "status", "snapshot_hash", "votes_now")
    )
    return {str(id_): decision_state(status, snap, votes) for id_, status, snap, votes in rows}
