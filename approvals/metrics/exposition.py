"""The figures in Prometheus' text format, read from the database at scrape time.

A fresh registry per scrape and a collector that queries when collected: nothing is counted in
process memory, so every web node behind the load balancer answers the same.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from approvals import channel_registry
from approvals.channels import webhook
from approvals.models import OutboxMessage, PausePacket
from approvals.selectors import sla

# The classic text format, spelled out: newer prometheus-client releases moved
# CONTENT_TYPE_LATEST to version 1.0.0, while generate_latest still writes 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PacketCollector:
    """Open packets, expiries and decision latency, queried when Prometheus scrapes."""

    def __init__(self, packets: QuerySet, *, days: int, now: datetime | None = None):
        self.packets = packets
        self.days = days
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        open_packets = GaugeMetricFamily(
            "gatekeeper_open_packets",
            "Packets waiting for a decision now (pending, re_review, reconciling).",
            labels=["workflow", "status"],
        )
        expired = CounterMetricFamily(
            "gatekeeper_packets_expired",
            "Packets that reached their deadline undecided, since the beginning.",
            labels=["workflow"],
        )
        for workflow, status, count in sla.packets_by_workflow_and_status(self.packets):
            if status == PausePacket.Status.EXPIRED:
                expired.add_metric([workflow], count)
            else:
                open_packets.add_metric([workflow, status], count)
        yield open_packets
        yield expired

        latency = HistogramMetricFamily(
            "gatekeeper_decision_latency_seconds",
            f"Time from request to decision of the packets decided in the last {self.days} "
            "days (a rolling window, so read it with histogram_quantile, not rate).",
            labels=["workflow"],
        )
        since = now - timedelta(days=self.days)
        for histogram in sla.latency_histograms(self.packets, since=since):
            buckets = [
                (floatToGoString(edge), count)
                for edge, count in zip(sla.LATENCY_BUCKETS, histogram.buckets, strict=True)
            ]
            latency.add_metric(
                [histogram.workflow], [*buckets, ("+Inf", histogram.count)], histogram.sum
            )
        yield latency


class OutboxCollector:
    """What the outbox still holds, and the webhooks it gave up on (DESIGN section 9)."""

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "gatekeeper_outbox_backlog",
            "Email and webhook messages waiting to be delivered (pending or being sent).",
            labels=["kind"],
        )
        failures = CounterMetricFamily(
            "gatekeeper_webhook_failures",
            "Webhook deliveries given up on after retrying for 24 hours, since the beginning.",
        )
        waiting = Q(status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING])
        figures = OutboxMessage.objects.aggregate(
            **{
                kind: Count("id", filter=waiting & Q(kind=kind))
                for kind, _label in channel_registry.choices()
            },
            failed=Count("id", filter=Q(kind=webhook.KIND, status=OutboxMessage.Status.FAILED)),
        )
        failed = figures.pop("failed")
        counts = figures
        for kind, count in counts.items():
            backlog.add_metric([kind], count)
        failures.add_metric([], failed)
        yield backlog
        yield failures


def exposition(*, days: int) -> bytes:
    """Every packet's figures (Prometheus holds no user), in the 0.0.4 text format."""
    registry = CollectorRegistry()
    registry.register(PacketCollector(PausePacket.objects.all(), days=days))
    registry.register(OutboxCollector())
    return generate_latest(registry)
