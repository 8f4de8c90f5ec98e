"""Expiry never approves: whatever reviewers, orchestrators and sweeps do, and whenever.

Hypothesis draws a packet's deadlines and a run of actions at random moments of a fake clock,
packed around fresh_until and expires_at where the off-by-ones live; after every action and at
the end, nothing may have been approved at or after the deadline, and every expired packet
blocks its step.
"""

import contextlib
import io
import itertools
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from approvals.errors import GatekeeperError
from approvals.models import PausePacket
from approvals.serializers import approval_json
from approvals.services.executions import step_record_outcome
from approvals.services.review import packet_approve, packet_reconcile, packet_reject
from approvals.services.transactions import seeding
from audit.models import AuditEvent

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# Repeats weight the draw: approvals are what could go wrong, a reject ends the story early.
ACTIONS = (
    *["approve_alice"] * 3,
    *["approve_bob"] * 3,
    "reject",
    "reconcile_happened",
    "reconcile_not_happened",
    "report_indeterminate",
    *["sweep"] * 2,
)
_threads = itertools.count()


class Clock:
    def __init__(self):
        self.now = T0

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)

    def __call__(self):
        return self.now


@st.composite
def scenarios(draw):
    fresh = draw(st.integers(1, 4000))
    expires = draw(st.integers(1, 4000))
    edges = [fresh - 1, fresh, fresh + 1, expires - 1, expires, expires + 1]
    moment = st.one_of(
        st.sampled_from([edge for edge in edges if edge >= 0]),
        st.integers(0, max(fresh, expires) + 60),
    )
    actions = draw(st.lists(st.tuples(st.sampled_from(ACTIONS), moment), max_size=8))
    return {
        "fresh": fresh,
        "expires": expires,
        "required": draw(st.sampled_from([1, 2])),
        "side_effect": draw(st.sampled_from(["not_started", "indeterminate"])),
        "actions": sorted(actions, key=lambda action: action[1]),  # a clock only goes forward
    }


def _scenario(*, fresh=900, expires=600, required=1, side_effect="not_started", actions) -> dict:
    return {
        "fresh": fresh,
        "expires": expires,
        "required": required,
        "side_effect": side_effect,
        "actions": actions,
    }


def _act(action: str, packet: PausePacket, alice, bob) -> None:
    if action == "approve_alice":
        packet_approve(packet_id=packet.id, user=alice)
    elif action == "approve_bob":
        packet_approve(packet_id=packet.id, user=bob)
    elif action == "reject":
        packet_reject(packet_id=packet.id, user=bob)
    elif action.startswith("reconcile_"):
        happened = action == "reconcile_happened"
        packet_reconcile(packet_id=packet.id, user=alice, happened=happened)
    elif action == "report_indeterminate":
        step_record_outcome(
            service_account=packet.requested_by,
            thread_id=packet.execution.thread_id,
            step_index=packet.step_index,
            side_effect="indeterminate",
            detail={},
        )
    else:
        call_command("sweep", stdout=io.StringIO())


def _check(packet: PausePacket, before: str, now: datetime) -> None:
    packet.refresh_from_db()
    if packet.status == "approved":
        assert packet.decision == "allow" and packet.decided_at < packet.expires_at
        assert before == "approved" or now < packet.expires_at, "approved at or after expiry"
    if packet.status == "expired":
        assert packet.decision == "block" and packet.branch is None, "expiry must block"
        assert packet.decided_at >= packet.expires_at
        assert approval_json(packet)["decision"] == "block"
    if before in ("approved", "rejected", "expired", "applied"):
        assert packet.status == before, f"a closed packet moved: {before} -> {packet.status}"
    late_approvals = AuditEvent.objects.filter(
        packet_id=packet.id, kind="packet.approved", at__gte=packet.expires_at
    )
    assert not late_approvals.exists()


@pytest.mark.django_db
@settings(
    max_examples=50,
    deadline=None,
    # The database fixtures are shared by every example; each example rolls its own work back.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
# The deadline itself, always tried: at expires_at a packet is expired, not approvable.
@example(scenario=_scenario(fresh=900, expires=600, actions=[("approve_alice", 600)]))
@example(scenario=_scenario(required=2, actions=[("approve_alice", 599), ("approve_bob", 600)]))
@example(
    scenario=_scenario(
        side_effect="indeterminate",
        actions=[("approve_alice", 0), ("reconcile_not_happened", 599), ("approve_bob", 600)],
    )
)
@example(scenario=_scenario(actions=[("sweep", 599), ("approve_alice", 600), ("sweep", 600)]))
def test_expiry_never_approves_and_every_expired_packet_blocks(scenario, packet_for, alice, bob):
    clock = Clock()
    # One transaction for the whole example, rolled back at its end: the actions nest in it.
    with mock.patch("django.utils.timezone.now", clock), seeding():
        packet = packet_for(
            execution__thread_id=f"prop-{next(_threads)}",
            action__side_effect=scenario["side_effect"],
        )
        PausePacket.objects.filter(id=packet.id).update(
            fresh_until=T0 + timedelta(seconds=scenario["fresh"]),
            expires_at=T0 + timedelta(seconds=scenario["expires"]),
            required_approvals=scenario["required"],
        )
        packet.refresh_from_db()
        for action, moment in scenario["actions"]:
            clock.at(moment)
            before = packet.status
            # A refusal (already decided, wrong state, a second vote) changes nothing.
            with contextlib.suppress(GatekeeperError):
                _act(action, packet, alice, bob)
            _check(packet, before, clock.now)

        # Time runs out and beat sweeps: nothing is left open, and nothing late was approved.
        last = max([scenario["expires"], *(moment for _, moment in scenario["actions"])])
        clock.at(last + 1)
        before = packet.status
        call_command("sweep", stdout=io.StringIO())
        _check(packet, before, clock.now)
        assert not packet.is_open
        if before in PausePacket.OPEN_STATUSES:
            assert packet.status == "expired"
        event(f"ended {packet.status}")  # --hypothesis-show-statistics: what was explored
        transaction.set_rollback(True)
