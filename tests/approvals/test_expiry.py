"""The expiry sweep: set-based, idempotent, and it never approves anything."""

from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.models import PausePacket
from approvals.services.expiry import packets_expire_overdue
from audit.models import AuditEvent


def _overdue(packet, seconds=1):
    past = timezone.now() - timedelta(seconds=seconds)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )


def test_overdue_open_packets_expire_and_are_recorded(packet_for):
    overdue = packet_for()
    on_time = packet_for(step__index=4)
    _overdue(overdue)
    assert packets_expire_overdue() == 1
    overdue.refresh_from_db()
    assert (overdue.status, overdue.decision, overdue.branch, overdue.decided_by) == (
        "expired",
        "block",
        None,
        [],
    )
    assert PausePacket.objects.get(id=on_time.id).status == "pending"
    assert AuditEvent.objects.filter(kind="packet.expired", packet_id=overdue.id).count() == 1


def test_a_second_sweep_changes_nothing(packet_for):
    _overdue(packet_for())
    packets_expire_overdue()
    events = AuditEvent.objects.count()
    assert packets_expire_overdue() == 0
    assert AuditEvent.objects.count() == events


def test_batches_cover_every_overdue_packet(packet_for):
    for index in range(7):
        _overdue(packet_for(step__index=index))
    assert packets_expire_overdue(batch_size=3) == 7
    assert not PausePacket.objects.filter(status="pending").exists()


def test_closed_packets_are_left_alone(packet_for, alice):
    from approvals.services.review import packet_reject

    packet = packet_for()
    packet_reject(packet_id=packet.id, user=alice)
    _overdue(packet)
    assert packets_expire_overdue() == 0
    assert PausePacket.objects.get(id=packet.id).status == "rejected"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(min_value=-7200, max_value=7200), min_size=1, max_size=5),
    clock=st.integers(min_value=-7200, max_value=7200),
)
def test_sweeping_at_any_clock_never_approves(packet_for, offsets, clock):
    PausePacket.objects.all().delete()
    now = timezone.now()
    for index, offset in enumerate(offsets):
        packet = packet_for(step__index=index, execution__thread_id=f"t-{index}")
        PausePacket.objects.filter(id=packet.id).update(
            created_at=now + timedelta(seconds=offset) - timedelta(days=1),
            expires_at=now + timedelta(seconds=offset),
        )
    packets_expire_overdue(now=now + timedelta(seconds=clock))
    assert not PausePacket.objects.exclude(status__in=["pending", "expired"]).exists()
    assert not PausePacket.objects.filter(decision="allow").exists()
    for packet in PausePacket.objects.all():
        assert (packet.status == "expired") == (packet.expires_at <= now + timedelta(seconds=clock))
