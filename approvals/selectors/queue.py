"""The reviewer queue: its page of packets and its capped status counts, in few queries."""

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from approvals.forms import QueueFilterForm
from approvals.models import PausePacket, Vote
from approvals.selectors.packets import packets_visible_to, view_grants

PAGE_SIZE = 50
QUEUE_STATUSES = ("open", "all", *PausePacket.Status.values)
# Each status is counted up to this many packets; more show as "1,000+". Exact counts cost a pass
# over every visible packet, history included, on every refresh of every open queue.
QUEUE_COUNT_CAP = 1000
# A user holding fewer view grants than this is read from the grants (cost: their grants); one
# holding more, packet by packet (cost: the cap over the share of packets they may see). About
# where the two cost the same (bench/PROFILES.md).
QUEUE_FEW_GRANTS = 10_000
# Page numbers past this are past the end of any queue; it keeps LIMIT inside a bigint.
_LAST_COUNTED_PAGE = 10**9


@dataclass(frozen=True)
class _QueueReads:
    """The packets the queue reads, narrowed for the user in the way that suits each read.

    Asking "may this user view it" packet by packet (EXISTS over a UNION ALL, which PostgreSQL
    cannot turn into a hash of every grant the user holds) lets a read stop after the rows it
    needs: a count with a LIMIT, or a page of open packets read in order from the
    `packet_open_by_deadline` index. A read with no such index sees every visible packet anyway,
    and then a hash of the grants is cheaper than a probe per packet. A user holding few grants
    (QUEUE_FEW_GRANTS) is read from the grants for everything: probing would walk the whole
    table to find their packets, and a count of all of them costs no more than their grants.
    """

    limited: QuerySet[PausePacket]  # for reads an index lets stop at their LIMIT
    full: QuerySet[PausePacket]  # for reads that see every visible packet
    few: bool

    @classmethod
    def for_user(cls, user) -> "_QueueReads":
        packets = PausePacket.objects.all()
        if user.is_superuser:
            return cls(packets, packets, few=False)
        if not user.is_active:
            return cls(packets.none(), packets.none(), few=True)
        by_user, by_group = view_grants(user)
        granted = by_user.values("content_object_id").union(
            by_group.values("content_object_id"), all=True
        )
        if granted[:QUEUE_FEW_GRANTS].count() < QUEUE_FEW_GRANTS:
            from_grants = packets.filter(pk__in=granted)
            return cls(from_grants, from_grants, few=True)
        probe = by_user.filter(content_object=OuterRef("pk")).values("pk")
        probe = probe.union(by_group.filter(content_object=OuterRef("pk")).values("pk"), all=True)
        return cls(packets.filter(Exists(probe)), packets_visible_to(user), few=False)


@dataclass(frozen=True)
class QueueFilters:
    status: str = "open"
    workflow: str = ""
    owner: str = ""
    policy: str = ""
    q: str = ""
    # Filters given but left out, one sentence each: "Search: Contains a NUL character. ..."
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, query) -> "QueueFilters":
        """Read the query string; unknown statuses fall back to the open queue, and a filter
        that could match nothing (too long, a NUL, ...) is ignored with a sentence saying so."""
        status = query.get("status", "open")
        form = QueueFilterForm(query)
        return cls(
            status=status if status in QUEUE_STATUSES else "open",
            **form.usable(),
            ignored=form.ignored(),
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
        values = {
            "status": self.status,
            "workflow": self.workflow,
            "owner": self.owner,
            "policy": self.policy,
            "q": self.q,
            **changes,
        }
        return urlencode(
            {k: v for k, v in values.items() if v and not (k == "status" and v == "open")}
        )


@dataclass(frozen=True)
class CappedCount:
    """A number of packets, counted up to a limit: exact below it, "at least" once it is reached."""

    value: int
    exact: bool

    @classmethod
    def of(cls, counted: int, limit: int) -> "CappedCount":
        return cls(counted, counted < limit)

    def __add__(self, other: "CappedCount") -> "CappedCount":
        return CappedCount(self.value + other.value, self.exact and other.exact)

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"{self.value:,}+"


def _tab_statuses(tab: str) -> tuple[str, ...]:
    if tab == "open":
        return PausePacket.OPEN_STATUSES
    return PausePacket.Status.values if tab == "all" else (tab,)


def _count_by_status(packets: QuerySet, limits: dict[str, int]) -> dict[str, CappedCount]:
    """Each status's packets counted up to its limit, in one statement.

    A `SELECT COUNT(*) FROM (... LIMIT n)` per status, joined by UNION ALL: each part stops
    once it has found its limit, so the cost follows the limits, not the length of the history.
    The parts are the ORM's own SQL with its parameters; nothing is formatted into the text.
    """
    parts, params = [], []
    for status, limit in limits.items():
        # In the index's own order: without it, PostgreSQL may pick a bitmap scan, which reads
        # every packet of the status before the LIMIT applies (92 ms instead of 3 ms for 1,000 of
        # 25,000 pending packets, bench/PROFILES.md session 6).
        part = packets.filter(status=status).order_by("expires_at").values("pk")[:limit]
        sql, part_params = part.query.sql_with_params()
        parts.append(f"SELECT %s, COUNT(*) FROM ({sql}) AS part")  # noqa: S608 (ORM SQL only)
        params += [status, *part_params]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return {status: CappedCount.of(n, limits[status]) for status, n in cursor.fetchall()}


def _status_counts(
    reads: _QueueReads, filters: QueueFilters, *, page_number: int
) -> dict[str, CappedCount]:
    """Counts for the status tabs, "open" and "all"; the current tab counts as far as its page.

    The current tab is counted past the cap when the page asked for needs it, so a next page is
    known to exist; the total of "open" or "all" is exact only when each of its parts is. Each
    status is counted up to its limit in the `packet_status_deadline` index; for a user with few
    grants the grants are the short list, so their packets are counted in one pass and capped
    the same way afterwards, and the tabs read alike whichever way they were counted.
    """
    limits = dict.fromkeys(PausePacket.Status.values, QUEUE_COUNT_CAP)
    needed = max(QUEUE_COUNT_CAP, (page_number + 1) * PAGE_SIZE)
    limits.update(dict.fromkeys(_tab_statuses(filters.status), needed))
    if reads.few:
        found = dict(
            filters.apply(reads.full, with_status=False)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        counts = {
            status: CappedCount.of(min(found.get(status, 0), limit), limit)
            for status, limit in limits.items()
        }
    else:
        counts = _count_by_status(filters.apply(reads.limited, with_status=False), limits)
    for total in ("open", "all"):
        counts[total] = sum((counts[s] for s in _tab_statuses(total)), CappedCount(0, exact=True))
    return counts


def _page_number(raw) -> int:
    """The page asked for; anything but a positive number is the first page.

    (Django's get_page shows the last page for 0 or less, which only an exact count can find.)
    """
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), _LAST_COUNTED_PAGE)


class _CountedPaginator(Paginator):
    """A paginator told its total: the status counts already hold it, so no COUNT(*) again.

    When the count stopped at its limit, `exact` is False and num_pages is a lower bound.
    """

    def __init__(self, object_list, per_page, *, count: CappedCount):
        super().__init__(object_list, per_page)
        self._known_count = count.value
        self.exact = count.exact

    @property
    def count(self) -> int:
        return self._known_count


def queue_page(user, filters: QueueFilters, page_number) -> tuple[Page, dict[str, CappedCount]]:
    """A page of the queue, most urgent first, and the count of each status under the filters.

    Four queries whatever the queue's length: whether the user holds few grants, the status
    counts in one statement (they also give the page count), the page itself (open packets in
    the order of the open-deadline index, no GROUP BY), and the current votes of the page's rows
    only.
    """
    reads = _QueueReads.for_user(user)
    number = _page_number(page_number)
    counts = _status_counts(reads, filters, page_number=number)
    in_deadline_index = set(_tab_statuses(filters.status)) <= set(PausePacket.OPEN_STATUSES)
    visible = reads.limited if in_deadline_index else reads.full
    packets = filters.apply(visible).select_related("execution").order_by("expires_at", "id")
    page = _CountedPaginator(packets, PAGE_SIZE, count=counts[filters.status]).get_page(number)
    rows = list(page.object_list)
    current = Counter(
        packet_id
        for packet_id, snapshot, packet_snapshot in Vote.objects.filter(
            packet__in=[packet.id for packet in rows]
        ).values_list("packet_id", "snapshot_hash", "packet__snapshot_hash")
        if snapshot == packet_snapshot
    )
    for packet in rows:
        packet.current_vote_count = current[packet.id]  # the whole page in one query
    page.object_list = rows
    return page, counts


def open_count(user) -> CappedCount:
    """The top bar's open count, polled by every open tab every 30 seconds: capped."""
    open_packets = (
        _QueueReads.for_user(user).limited.filter(status__in=PausePacket.OPEN_STATUSES).order_by()
    )
    return CappedCount.of(open_packets[:QUEUE_COUNT_CAP].count(), QUEUE_COUNT_CAP)
