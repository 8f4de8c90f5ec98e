"""The expiry sweep: set-based, idempotent, and it never approves anything."""

import json
from datetime import UTC, datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from approvals.models import OutboxMessage, PausePacket
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from audit.models import AuditEvent
from audit.verify import verify_chain


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


def _due_at(packet, expires_at):
    PausePacket.objects.filter(id=packet.id).update(
        created_at=expires_at - timedelta(days=1), expires_at=expires_at
    )


def _event_data_as_python_writes_it(expires_at):
    return json.loads(
        json.dumps(
            {
                "status": "expired",
                "branch": None,
                "decision": "block",
                "decided_by": [],
                "comment": "",
                "expires_at": expires_at,
                "reason": "decision deadline passed",
            },
            cls=DjangoJSONEncoder,
        )
    )


def test_an_expiry_a_reviewer_notices_is_recorded_as_the_sweep_records_it(packet_for, alice):
    packet = packet_for()
    deadline = timezone.now() - timedelta(minutes=1)
    _due_at(packet, deadline)
    packet_approve(packet_id=packet.id, user=alice)
    event = AuditEvent.objects.get(packet_id=packet.id, kind="packet.expired")
    assert event.data == {**_event_data_as_python_writes_it(deadline), "noticed_by": "user:alice"}


DEADLINES = [
    datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC),  # whole seconds: no fraction at all
    datetime(2026, 11, 23, 12, 0, 0, 500_000, tzinfo=UTC),
    datetime(2026, 11, 23, 12, 0, 0, 999_999, tzinfo=UTC),  # truncated, not rounded
    datetime(2026, 11, 23, 12, 0, 0, 400, tzinfo=UTC),  # under a millisecond: ".000"
    datetime(1999, 12, 31, 23, 59, 59, 123_456, tzinfo=UTC),
]


def test_the_expired_event_is_recorded_as_python_would_render_it(packet_for):
    packets = [packet_for(step__index=index) for index in range(len(DEADLINES))]
    for packet, deadline in zip(packets, DEADLINES, strict=True):
        _due_at(packet, deadline)
    with connection.cursor() as cursor:
        # The rendering must not depend on the session's time zone.
        cursor.execute("SET TIME ZONE 'Asia/Kolkata'")
        try:
            assert packets_expire_overdue(now=DEADLINES[2]) == len(DEADLINES)
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    for packet, deadline in zip(packets, DEADLINES, strict=True):
        event = AuditEvent.objects.get(packet_id=packet.id, kind="packet.expired")
        assert (event.actor, event.execution_id) == ("system", packet.execution_id)
        assert event.data == _event_data_as_python_writes_it(deadline)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deadline=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
@example(deadline=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
@example(deadline=datetime(2026, 1, 1, 0, 0, 0, 1_000, tzinfo=UTC))
def test_any_deadline_is_recorded_as_python_would_render_it(packet_for, deadline):
    packet = packet_for()
    _due_at(packet, deadline)
    assert packets_expire_overdue(now=deadline) == 1
    event = AuditEvent.objects.filter(packet_id=packet.id, kind="packet.expired").get()
    assert event.data == _event_data_as_python_writes_it(deadline)


def test_the_record_is_chained_in_deadline_order_and_verifies(packet_for):
    packets = [packet_for(step__index=index) for index in range(5)]
    now = timezone.now()
    for offset, packet in zip([3, 1, 4, 2, 5], packets, strict=True):
        _due_at(packet, now - timedelta(seconds=offset))
    before = AuditEvent.objects.order_by("id").last()
    assert packets_expire_overdue(now=now, batch_size=2) == 5
    events = list(AuditEvent.objects.filter(id__gt=before.id).order_by("id"))
    assert [e.kind for e in events] == ["packet.expired"] * 5
    assert [e.packet_id for e in events] == [packets[i].id for i in (4, 2, 0, 3, 1)]
    assert [e.prev_hash for e in events] == [before.hash] + [e.hash for e in events[:-1]]
    assert verify_chain().intact


def test_the_outbox_is_not_read_when_nobody_must_hear(packet_for):
    for index in range(3):
        _overdue(packet_for(step__index=index))
    with CaptureQueriesContext(connection) as queries:
        assert packets_expire_overdue() == 3
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    # The chain lock, the one statement of the batch, the notifications: nothing else.
    assert len(statements) == 3, "\n".join(statements)
    assert not OutboxMessage.objects.filter(topic__in=["approval.decided", "outcome"]).exists()


def test_callbacks_and_requesters_hear_of_the_expiry(packet_for, agent, make_user):
    make_user("dana")
    agent.callback_url = "https://agent.example.com/hook"
    agent.save(update_fields=["callback_url"])
    quiet, _ = service_account_create(name="quiet")
    hooked = packet_for()
    requested = packet_for(account=quiet, execution__on_behalf_of="dana")
    unheard = packet_for(account=quiet, step__index=4)
    for packet in (hooked, requested, unheard):
        _overdue(packet)
    assert packets_expire_overdue() == 3
    told = OutboxMessage.objects.filter(topic__in=["approval.decided", "outcome"])
    assert sorted((m.packet_id, m.topic) for m in told) == sorted(
        [(hooked.id, "approval.decided"), (requested.id, "outcome")]
    )
    webhook = told.get(topic="approval.decided")
    assert json.loads(webhook.payload["body"])["approval"]["status"] == "expired"
    assert told.get(topic="outcome").recipient == "dana@example.com"
