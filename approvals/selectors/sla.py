"""SLA figures, aggregated in PostgreSQL: one query per figure, however many packets there are.

Every function takes the packets to count, already narrowed by permission (`packets_visible_to`
of approvals.selectors.packets, or every packet for the Prometheus scrape), so the SQL stays the
same whoever asks. Nothing is cached in the process: several web nodes answer the same questions.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Aggregate, Count, F, FloatField, Func, Q, QuerySet, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from approvals.models import Decision, PausePacket

DEFAULT_DAYS = 14
MAX_DAYS = 90
# Upper edges of the open-packet age buckets, in seconds; the last bucket has none.
OPEN_AGE_BUCKETS = (
    ("< 15 min", 15 * 60),
    ("< 1 h", 60 * 60),
    ("< 4 h", 4 * 60 * 60),
    ("< 24 h", 24 * 60 * 60),
    ("older", None),
)
# Histogram bucket edges (seconds) for the decision latency; +Inf is the count of all.
LATENCY_BUCKETS = (60, 300, 900, 1800, 3600, 14400, 86400)
DAY_DECISIONS = (Decision.ALLOW, Decision.BLOCK, Decision.SKIP)


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    arity = 1
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)
        if not 0 <= fraction <= 1:
            raise ValueError("a percentile fraction lies between 0 and 1")
        # A literal, not a parameter: it is a float we made, and PostgreSQL wants a constant.
        super().__init__(expression, fraction=repr(fraction), **extra)


def _seconds_between(start: str, end: str) -> Func:
    return Func(
        F(end) - F(start), template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField()
    )


def parse_days(raw: str | None) -> tuple[int, str]:
    """The `days` query parameter: (days, error); a bad value falls back to the default."""
    if raw is None or raw.strip() == "":
        return DEFAULT_DAYS, ""
    try:
        days = int(raw.strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        return DEFAULT_DAYS, f"days must be a whole number from 1 to {MAX_DAYS}"
    return days, ""


def window_start(*, days: int, now: datetime) -> datetime:
    """Midnight starting the oldest of the last `days` calendar days (today included)."""
    today = timezone.localdate(now)
    return timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), time.min))


def _decided_since(packets: QuerySet, since: datetime) -> QuerySet:
    """Packets decided in the window, with their latency; a superseded one was never decided."""
    return (
        packets.filter(decided_at__gte=since)
        .exclude(status=PausePacket.Status.SUPERSEDED)
        .alias(latency=_seconds_between("created_at", "decided_at"))
    )


@dataclass(frozen=True)
class Latency:
    """Time to decision for one workflow or owner."""

    name: str
    decided: int
    median: float
    p90: float
    expired: int

    @property
    def expired_share(self) -> float:
        return self.expired / self.decided if self.decided else 0.0


def latency_by(packets: QuerySet, *, field: str, since: datetime) -> list[Latency]:
    """Median and p90 time to decision, and expiries, per `workflow` or `owner`; one query."""
    if field not in ("workflow", "owner"):
        raise ValueError(f"no latency grouping by {field!r}")
    rows = (
        _decided_since(packets, since)
        .values(field)
        .annotate(
            decided=Count("id"),
            median=Percentile("latency", 0.5),
            p90=Percentile("latency", 0.9),
            expired=Count("id", filter=Q(status=PausePacket.Status.EXPIRED)),
        )
        .order_by(field)
    )
    return [
        Latency(row[field], row["decided"], row["median"], row["p90"], row["expired"])
        for row in rows
    ]


@dataclass(frozen=True)
class AgeBucket:
    label: str
    count: int


def open_by_age(packets: QuerySet, *, now: datetime) -> list[AgeBucket]:
    """Open packets counted by how long ago they were made; one query, one row."""
    edges = [seconds for _, seconds in OPEN_AGE_BUCKETS]
    counts = {}
    for index, (older_than, younger_than) in enumerate(zip([None, *edges], edges, strict=False)):
        condition = Q()
        if younger_than is not None:
            condition &= Q(created_at__gt=now - timedelta(seconds=younger_than))
        if older_than is not None:
            condition &= Q(created_at__lte=now - timedelta(seconds=older_than))
        counts[f"b{index}"] = Count("id", filter=condition)
    row = packets.filter(status__in=PausePacket.OPEN_STATUSES).aggregate(**counts)
    return [AgeBucket(label, row[f"b{index}"]) for index, (label, _) in enumerate(OPEN_AGE_BUCKETS)]


@dataclass(frozen=True)
class DayDecisions:
    day: date
    allow: int = 0
    block: int = 0
    skip: int = 0

    @property
    def total(self) -> int:
        return self.allow + self.block + self.skip


def decisions_per_day(packets: QuerySet, *, since: datetime, now: datetime) -> list[DayDecisions]:
    """Decisions made each day of the window, by decision; days with none are listed as zero."""
    rows = (
        packets.filter(decided_at__gte=since, decision__in=DAY_DECISIONS)
        .exclude(status=PausePacket.Status.SUPERSEDED)
        .annotate(day=TruncDay("decided_at"))
        .values("day")
        .annotate(
            **{
                decision.value: Count("id", filter=Q(decision=decision))
                for decision in DAY_DECISIONS
            }
        )
        .order_by("day")
    )
    by_day = {
        timezone.localdate(row["day"]): DayDecisions(
            timezone.localdate(row["day"]), row["allow"], row["block"], row["skip"]
        )
        for row in rows
    }
    first, last = timezone.localdate(since), timezone.localdate(now)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [by_day.get(day, DayDecisions(day)) for day in days]


@dataclass(frozen=True)
class SlaReport:
    days: int
    since: datetime
    now: datetime
    by_workflow: list[Latency]
    by_owner: list[Latency]
    open_ages: list[AgeBucket]
    per_day: list[DayDecisions]

    @property
    def decided(self) -> int:
        return sum(row.decided for row in self.by_workflow)

    @property
    def open(self) -> int:
        return sum(bucket.count for bucket in self.open_ages)


def sla_report(packets: QuerySet, *, days: int, now: datetime | None = None) -> SlaReport:
    """Everything the /metrics/ page shows, in four queries."""
    now = now or timezone.now()
    since = window_start(days=days, now=now)
    return SlaReport(
        days=days,
        since=since,
        now=now,
        by_workflow=latency_by(packets, field="workflow", since=since),
        by_owner=latency_by(packets, field="owner", since=since),
        open_ages=open_by_age(packets, now=now),
        per_day=decisions_per_day(packets, since=since, now=now),
    )


def packets_by_workflow_and_status(packets: QuerySet) -> list[tuple[str, str, int]]:
    """(workflow, status, count) for open packets and for expired ones, over all time."""
    return list(
        packets.filter(status__in=[*PausePacket.OPEN_STATUSES, PausePacket.Status.EXPIRED])
        .values_list("workflow", "status")
        .annotate(n=Count("id"))
        .order_by("workflow", "status")
    )


@dataclass(frozen=True)
class LatencyHistogram:
    workflow: str
    # Cumulative counts, one per LATENCY_BUCKETS edge: each counts latencies <= its edge.
    buckets: tuple[int, ...]
    count: int
    sum: float


def latency_histograms(packets: QuerySet, *, since: datetime) -> list[LatencyHistogram]:
    """Decision latency per workflow as cumulative histogram buckets counted in SQL; one query.

    Each bucket is its own `count(*) FILTER (WHERE latency <= edge)`, so the counts are
    cumulative by construction, as Prometheus requires.
    """
    buckets = {f"le_{edge}": Count("id", filter=Q(latency__lte=edge)) for edge in LATENCY_BUCKETS}
    rows = (
        _decided_since(packets, since)
        .values("workflow")
        .annotate(**buckets, count=Count("id"), total=Sum("latency"))
        .order_by("workflow")
    )
    return [
        LatencyHistogram(
            workflow=row["workflow"],
            buckets=tuple(row[f"le_{edge}"] for edge in LATENCY_BUCKETS),
            count=row["count"],
            sum=row["total"] or 0.0,
        )
        for row in rows
    ]
