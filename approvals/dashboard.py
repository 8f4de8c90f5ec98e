"""Reads for the reviewer dashboard: what a user may see, narrowed by guardian, in few queries."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals.branch_table import Facts, Outcome, decide_approval
from approvals.models import (
    PausePacket,
    PausePacketGroupObjectPermission,
    PausePacketUserObjectPermission,
    Vote,
)
from audit.models import AuditEvent

PAGE_SIZE = 50
QUEUE_STATUSES = ("open", "all", *PausePacket.Status.values)


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


@dataclass(frozen=True)
class QueueFilters:
    status: str = "open"
    workflow: str = ""
    owner: str = ""
    policy: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query) -> "QueueFilters":
        """Read the query string; unknown statuses fall back to the open queue."""
        status = query.get("status", "open")
        return cls(
            status=status if status in QUEUE_STATUSES else "open",
            **{
                key: query.get(key, "").strip()[:200]
                for key in ("workflow", "owner", "policy", "q")
            },
        )

    def apply(self, packets: QuerySet, *, with_status: bool = True) -> QuerySet:
        if with_status and self.status == "open":
            packets = packets.filter(status__in=PausePacket.OPEN_STATUSES)
        elif with_status and self.status != "all":
            packets = packets.filter(status=self.status)
        if self.workflow:
            packets = packets.filter(workflow=self.workflow)
        if self.owner:
            packets = packets.filter(owner=self.owner)
        if self.policy:
            packets = packets.filter(policy_name=self.policy)
        if self.q:
            packets = packets.filter(
                Q(execution__thread_id__icontains=self.q)
                | Q(tool__icontains=self.q)
                | Q(step_name__icontains=self.q)
            )
        return packets

    def as_query(self, **changes) -> str:
        """This query string with some values changed; defaults are left out."""
        values = {**self.__dict__, **changes}
        return urlencode(
            {k: v for k, v in values.items() if v and not (k == "status" and v == "open")}
        )


class _CountedPaginator(Paginator):
    """A paginator told its total: the status counts already hold it, so no COUNT(*) again."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


def queue_page(user, filters: QueueFilters, page_number) -> tuple[Page, dict[str, int]]:
    """A page of the queue, most urgent first, and the count of each status under the filters.

    Three queries whatever the queue's length: the status counts (which also give the page
    count), the page itself (ordered by the open-deadline index, no GROUP BY), and the current
    votes of the page's rows only.
    """
    visible = packets_visible_to(user)
    counts = dict(
        filters.apply(visible, with_status=False)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts["all"] = sum(counts.values())
    counts["open"] = sum(counts.get(status, 0) for status in PausePacket.OPEN_STATUSES)
    packets = filters.apply(visible).select_related("execution").order_by("expires_at", "id")
    page = _CountedPaginator(packets, PAGE_SIZE, count=counts.get(filters.status, 0)).get_page(
        page_number
    )
    rows = list(page.object_list)
    current = Counter(
        packet_id
        for packet_id, snapshot, packet_snapshot in Vote.objects.filter(
            packet__in=[packet.id for packet in rows]
        ).values_list("packet_id", "snapshot_hash", "packet__snapshot_hash")
        if snapshot == packet_snapshot
    )
    for packet in rows:
        packet.current_votes = current[packet.id]
    page.object_list = rows
    return page, counts


def open_count(user) -> int:
    return packets_visible_to(user).filter(status__in=PausePacket.OPEN_STATUSES).count()


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
        Facts(
            now=now or timezone.now(),
            expires_at=packet.expires_at,
            fresh_until=packet.fresh_until,
            owner_changed=packet.owner != packet.execution.owner,
            side_effect=packet.side_effect,
            votes_with_this_one=len(voters) + 1,
            required_approvals=packet.required_approvals,
        )
    )


def packet_votes(packet: PausePacket) -> list:
    return list(packet.current_votes().select_related("user"))


def execution_recent_record(packet: PausePacket, limit: int = 12) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(execution_id=packet.execution_id).order_by("-id")[:limit])
