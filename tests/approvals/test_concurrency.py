"""Racing actions on one packet give exactly one outcome, and the record agrees.

Each thread has its own PostgreSQL connection and real transactions; a barrier releases them
together so the row lock, not luck, decides.
"""

import copy
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from approvals.errors import AlreadyDecided, GatekeeperError
from approvals.gate_request import parse_gate_request
from approvals.models import Execution, GateCheck, PausePacket, StepOutcome
from approvals.services.expiry import packets_expire_overdue
from approvals.services.gate import gate_check
from approvals.services.review import (
    packet_approve,
    packet_reconcile,
    packet_reject,
    packet_take_over,
)
from audit.models import AuditEvent
from audit.services import Event, record_events
from audit.verify import verify_chain
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 24
CLOSING_KINDS = ["packet.approved", "packet.rejected", "packet.expired", "packet.terminated"]


def race(actions):
    """Run callables at once, each in its own thread; return what each returned or raised."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(position, action):
        try:
            barrier.wait()
            results[position] = action()
        except Exception as error:  # noqa: BLE001 - the test inspects every failure
            results[position] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def reviewers(make_user):
    return [make_user(f"reviewer{n}", "reviewers") for n in range(THREADS)]


def unexpected(results):
    return [r for r in results if isinstance(r, Exception) and not isinstance(r, GatekeeperError)]


def test_racing_approvals_give_one_approval(packet_for, reviewers):
    packet = packet_for()
    results = race([lambda u=u: packet_approve(packet_id=packet.id, user=u) for u in reviewers])
    assert unexpected(results) == []
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert sum(isinstance(r, AlreadyDecided) for r in results) == THREADS - 1
    packet.refresh_from_db()
    assert packet.status == "approved" and len(packet.decided_by) == 1
    assert packet.votes.count() == 1
    assert AuditEvent.objects.filter(packet_id=packet.id, kind__in=CLOSING_KINDS).count() == 1


def test_racing_approvals_on_a_quorum_of_two_stop_at_two_votes(packet_for, policy, reviewers):
    policy("two", required_approvals=2)
    packet = packet_for()
    results = race([lambda u=u: packet_approve(packet_id=packet.id, user=u) for u in reviewers])
    assert unexpected(results) == []
    packet.refresh_from_db()
    assert packet.status == "approved"
    assert len(packet.decided_by) == 2 and packet.votes.count() == 2
    assert AuditEvent.objects.filter(packet_id=packet.id, kind="packet.voted").count() == 2


def test_approve_against_reject_gives_exactly_one_outcome(packet_for, reviewers):
    packet = packet_for()
    actions = [
        (lambda u=u: packet_approve(packet_id=packet.id, user=u))
        if n % 2
        else (lambda u=u: packet_reject(packet_id=packet.id, user=u))
        for n, u in enumerate(reviewers)
    ]
    results = race(actions)
    assert unexpected(results) == []
    assert sum(not isinstance(r, Exception) for r in results) == 1
    packet.refresh_from_db()
    closing = list(AuditEvent.objects.filter(packet_id=packet.id, kind__in=CLOSING_KINDS))
    assert len(closing) == 1
    assert closing[0].kind == f"packet.{packet.status}"
    assert packet.decided_by == closing[0].data["decided_by"]


def test_approve_against_the_expiry_sweep_gives_exactly_one_outcome(packet_for, reviewers):
    for round_ in range(3):
        packet = packet_for(step__index=round_)
        deadline = timezone.now() + timedelta(milliseconds=50)
        PausePacket.objects.filter(id=packet.id).update(expires_at=deadline)
        sweep_clock = deadline + timedelta(seconds=1)
        sweepers = [lambda c=sweep_clock: packets_expire_overdue(now=c)] * 4
        approvals = [
            lambda u=u, p=packet.id: packet_approve(packet_id=p, user=u) for u in reviewers[:20]
        ]
        results = race(sweepers + approvals)
        assert unexpected(results) == []
        packet.refresh_from_db()
        assert packet.status in ("approved", "expired")
        closing = AuditEvent.objects.filter(packet_id=packet.id, kind__in=CLOSING_KINDS)
        assert [e.kind for e in closing] == [f"packet.{packet.status}"]
        if packet.status == "expired":
            assert packet.decision == "block" and not packet.votes.exists()


def test_sweeps_racing_other_writers_of_the_record_leave_one_unbroken_chain(packet_for, reviewers):
    packets = [packet_for(step__index=index) for index in range(12)]
    PausePacket.objects.update(expires_at=F("created_at"))

    def write_events(writer):
        for round_ in range(4):
            with transaction.atomic():
                record_events(
                    Event("policy.changed", actor="test", data={"writer": writer, "round": round_})
                    for _ in range(3)
                )

    sweepers = [lambda: packets_expire_overdue(batch_size=2)] * 4
    approvals = [
        lambda u=u, p=p.id: packet_approve(packet_id=p, user=u)
        for u, p in zip(reviewers, packets, strict=False)
    ]
    writers = [lambda n=n: write_events(n) for n in range(8)]
    results = race(sweepers + approvals + writers)
    assert unexpected(results) == []
    assert set(PausePacket.objects.values_list("status", flat=True)) == {"expired"}
    for packet in packets:
        closing = AuditEvent.objects.filter(packet_id=packet.id, kind__in=CLOSING_KINDS)
        assert [e.kind for e in closing] == ["packet.expired"]
    assert AuditEvent.objects.filter(kind="policy.changed", actor="test").count() == 8 * 4 * 3
    assert verify_chain().intact


def test_take_over_against_approvals_gives_one_outcome(packet_for, reviewers):
    packet = packet_for()
    actions = [lambda u=u: packet_approve(packet_id=packet.id, user=u) for u in reviewers[1:]]
    actions.insert(THREADS // 2, lambda: packet_take_over(packet_id=packet.id, user=reviewers[0]))
    results = race(actions)
    assert unexpected(results) == []
    packet.refresh_from_db()
    assert packet.status in ("approved", "terminated")
    assert AuditEvent.objects.filter(packet_id=packet.id, kind__in=CLOSING_KINDS).count() == 1


def test_racing_reconciles_record_one_truth(packet_for, reviewers):
    packet = packet_for(action__side_effect="indeterminate")
    packet_approve(packet_id=packet.id, user=reviewers[0])
    results = race(
        [
            lambda u=u, n=n: packet_reconcile(packet_id=packet.id, user=u, happened=bool(n % 2))
            for n, u in enumerate(reviewers[:8])
        ]
    )
    assert unexpected(results) == []
    assert sum(not isinstance(r, Exception) for r in results) == 1
    reconciled = AuditEvent.objects.filter(packet_id=packet.id, kind="step.outcome")
    assert reconciled.count() == 1
    packet.refresh_from_db()
    happened = reconciled.get().data["side_effect"] == "landed"
    assert packet.status == ("applied" if happened else "pending")
    assert StepOutcome.objects.filter(execution_id=packet.execution_id).count() == int(happened)


def test_racing_takeovers_of_one_execution_leave_one_owner(packet_for, reviewers):
    packets = [packet_for(step__index=index) for index in range(3)]
    results = race(
        [
            lambda u=u, p=packets[n % 3].id: packet_take_over(packet_id=p, user=u)
            for n, u in enumerate(reviewers[:9])
        ]
    )
    assert unexpected(results) == []
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    taken = AuditEvent.objects.get(kind="execution.taken_over")
    assert Execution.objects.get().owner == taken.data["to"] == taken.actor
    assert set(PausePacket.objects.values_list("status", flat=True)) == {"terminated"}


def test_a_double_submitted_edit_records_one_edit_and_one_vote(packet_for, policy, reviewers):
    policy("editable-2", allow_edit=True, required_approvals=2)
    packet = packet_for()
    edited = {"user": "new.hire", "role": "viewer"}
    results = race(
        [lambda: packet_approve(packet_id=packet.id, user=reviewers[0], edited_args=edited)] * 4
    )
    assert unexpected(results) == []
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert AuditEvent.objects.filter(packet_id=packet.id, kind="packet.edited").count() == 1
    packet.refresh_from_db()
    assert packet.effective_args == edited and packet.votes.count() == 1


def test_ten_identical_gate_checks_make_one_packet_and_ten_equal_answers(agent):
    body = gate_body(idempotency_key="same-key")
    results = race(
        [
            lambda: gate_check(
                service_account=agent, request=parse_gate_request(copy.deepcopy(body)), body=body
            )
            for _ in range(10)
        ]
    )
    assert unexpected(results) == [] and not any(isinstance(r, Exception) for r in results)
    assert all(r == results[0] for r in results)
    assert GateCheck.objects.count() == 1 and PausePacket.objects.count() == 1


@pytest.mark.parametrize("effect", ["allow", "block"])
def test_ten_identical_allowed_or_blocked_checks_make_one_check_one_event_and_equal_answers(
    agent, policy, effect
):
    policy(name="iam", effect=effect, match={"tool": "iam.grant"})
    body = gate_body(idempotency_key="same-key", execution__thread_id="fresh-thread")
    results = race(
        [
            lambda: gate_check(
                service_account=agent, request=parse_gate_request(copy.deepcopy(body)), body=body
            )
            for _ in range(10)
        ]
    )
    assert unexpected(results) == [] and not any(isinstance(r, Exception) for r in results)
    assert results[0]["decision"] == effect and all(r == results[0] for r in results)
    assert GateCheck.objects.get().response == results[0]
    assert AuditEvent.objects.filter(kind="gate.checked").count() == 1


def test_one_key_raced_with_two_different_requests_answers_one_and_refuses_the_other(agent):
    bodies = [gate_body(idempotency_key="k", step__index=n) for n in (1, 2) for _ in range(5)]
    results = race(
        [
            lambda b=b: gate_check(
                service_account=agent, request=parse_gate_request(copy.deepcopy(b)), body=b
            )
            for b in bodies
        ]
    )
    answers = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, GatekeeperError)]
    assert len(answers) == 5 and len(refused) == 5 and len(answers) + len(refused) == 10
    assert {e.code for e in refused} == {"idempotency_conflict"}
    assert all(a == answers[0] for a in answers)
    assert GateCheck.objects.count() == 1


def test_concurrent_gate_checks_of_many_steps_keep_one_execution_and_an_unbroken_chain(agent):
    results = race(
        [
            lambda n=n: gate_check(
                service_account=agent,
                request=parse_gate_request(gate_body(idempotency_key=f"s{n}", step__index=n)),
                body=gate_body(idempotency_key=f"s{n}", step__index=n),
            )
            for n in range(THREADS)
        ]
    )
    assert unexpected(results) == []
    assert PausePacket.objects.count() == THREADS
    assert (
        Counter(PausePacket.objects.values_list("execution_id", flat=True)).most_common(1)[0][1]
        == THREADS
    )
    events = list(AuditEvent.objects.order_by("id"))
    for previous, current in zip(events, events[1:], strict=False):
        assert current.prev_hash == previous.hash
