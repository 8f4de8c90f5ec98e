"""The gate check service: decisions, packets, authority grants, idempotency, audit."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.errors import IdempotencyConflict, InvalidState, ValidationFailed
from approvals.models import Execution, GateCheck, PausePacket
from approvals.permissions import can_resume, can_view
from approvals.snapshot import snapshot_hash
from audit.models import AuditEvent


def test_a_matching_allow_policy_answers_allow_without_a_packet(gate, policy):
    policy("reads", effect="allow", priority=1, match={"tool": "iam.*"})
    response = gate()
    assert response["decision"] == "allow"
    assert response["policy"] == {"name": "reads", "version": 1}
    assert response["approval"] is None
    assert not PausePacket.objects.exists()
    assert GateCheck.objects.get().decision == "allow"


def _round_trips(captured) -> list[str]:
    """The statements sent, without transaction control."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(control)]


def test_an_allowed_check_is_two_round_trips_inside_its_transaction(gate, policy):
    """The execution with the rules, then the check with its chained event: nothing else."""
    policy("reads", effect="allow", match={"tool": "iam.*"})
    with CaptureQueriesContext(connection) as captured:
        gate()
    sent = _round_trips(captured)
    assert len(sent) == 2
    assert "approvals_policy" in sent[0] and "INSERT INTO approvals_execution" in sent[0]
    assert "INSERT INTO approvals_gatecheck" in sent[1]
    assert "pg_advisory_xact_lock" in sent[1] and "INSERT INTO audit_auditevent" in sent[1]
    assert AuditEvent.objects.filter(kind="gate.checked").count() == 1


@pytest.mark.parametrize("owner", ["reviewers", "user:alice", "service:agent"])
def test_naming_an_owner_keeps_an_allowed_check_at_two_round_trips(gate, policy, alice, owner):
    """The owner is looked up inside the execution's statement, not by a query of its own."""
    policy("reads", effect="allow", match={"tool": "iam.*"})
    with CaptureQueriesContext(connection) as captured:
        assert gate(execution__owner=owner)["decision"] == "allow"
    sent = _round_trips(captured)
    assert len(sent) == 2
    assert "SELECT EXISTS" in sent[0] and "INSERT INTO approvals_execution" in sent[0]
    assert Execution.objects.get().owner == owner


def test_an_unknown_owner_is_refused_after_one_round_trip_and_makes_nothing(gate, policy):
    policy("reads", effect="allow", match={"tool": "iam.*"})
    with CaptureQueriesContext(connection) as captured, pytest.raises(ValidationFailed) as error:
        gate(execution__owner="<svg onload=alert(1)>")
    assert error.value.details["errors"][0]["field"] == "execution.owner"
    sent = _round_trips(captured)
    # The execution's statement, then the look for an earlier answer to this key.
    assert len(sent) == 2 and "approvals_gatecheck" in sent[1]
    assert not Execution.objects.exists() and not GateCheck.objects.exists()


def test_a_block_policy_answers_block(gate, policy):
    policy("no-iam", effect="block", match={"tool": "iam.*"})
    assert gate()["decision"] == "block"


def test_require_approval_makes_a_packet_with_the_whole_pause_packet(gate, policy, alice):
    policy(
        "privileged-iam",
        match={"workflow": "hr-*"},
        approvers="it-approvers",
        required_approvals=2,
        fresh_for_seconds=600,
        expires_after_seconds=7200,
    )
    response = gate(execution__on_behalf_of="dana")
    packet = PausePacket.objects.get(id=response["approval"]["id"])
    assert packet.status == "pending" and packet.decision is None
    assert (packet.tool, packet.args) == ("iam.grant", {"user": "new.hire", "role": "admin"})
    assert packet.context[0]["name"] == "employee_record"
    assert packet.owner == "it-approvers" == packet.execution.owner
    assert packet.workflow == "hr-onboarding"
    assert (packet.policy_name, packet.policy_version) == ("privileged-iam", 1)
    assert packet.required_approvals == 2 and packet.on_behalf_of == "dana"
    assert (packet.fresh_until - packet.created_at).total_seconds() == 600
    assert (packet.expires_at - packet.created_at).total_seconds() == 7200
    assert packet.remind_before_seconds == 1800  # a quarter of the expiry window
    assert packet.snapshot_hash == snapshot_hash(
        tool="iam.grant",
        args=packet.args,
        context=packet.context,
        policy_name="privileged-iam",
        policy_version=1,
    )
    assert response["approval"]["status"] == "pending"
    assert response["approval"]["url"].endswith(f"/approvals/{packet.id}/")


def test_no_matching_policy_fails_closed_to_the_default_approvers(gate, alice, charlie):
    response = gate()
    packet = PausePacket.objects.get(id=response["approval"]["id"])
    assert packet.approvers == "reviewers"
    assert can_view(alice, packet) and can_resume(alice, packet)
    assert not can_view(charlie, packet)


def test_the_owner_group_sees_the_packet_and_only_the_approvers_may_decide_it(gate, make_user):
    owner = make_user("olivia", "hr-owners")
    approver = make_user("rita", "reviewers")
    packet = PausePacket.objects.get(id=gate(execution__owner="hr-owners")["approval"]["id"])
    assert can_view(owner, packet) and not can_resume(owner, packet)
    assert can_view(approver, packet) and can_resume(approver, packet)


def test_a_user_owner_sees_its_packets_without_deciding_them(gate, make_user):
    owner = make_user("uma")
    packet = PausePacket.objects.get(id=gate(execution__owner="user:uma")["approval"]["id"])
    assert can_view(owner, packet) and not can_resume(owner, packet)


def test_the_same_key_and_body_replays_the_first_response(agent, gate):
    from approvals.gate_request import parse_gate_request
    from approvals.services.gate import gate_check
    from tests.conftest import gate_body

    body = gate_body(idempotency_key="same")
    first = gate_check(service_account=agent, request=parse_gate_request(body), body=body)
    again = gate_check(service_account=agent, request=parse_gate_request(body), body=body)
    assert first == again
    assert GateCheck.objects.count() == 1 and PausePacket.objects.count() == 1
    assert AuditEvent.objects.filter(kind="gate.checked").count() == 1


def test_the_same_key_with_another_body_is_a_conflict(gate):
    gate(idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        gate(idempotency_key="k", step__index=4)
    assert GateCheck.objects.count() == 1


def test_keys_are_scoped_to_the_service_account(gate):
    from approvals.services.service_accounts import service_account_create

    other, _ = service_account_create(name="other")
    gate(idempotency_key="k")
    gate(other, idempotency_key="k")
    assert GateCheck.objects.count() == 2


def test_an_execution_keeps_its_first_workflow(gate):
    gate()
    with pytest.raises(InvalidState):
        gate(execution__workflow="payments", step__index=4)
    assert Execution.objects.get().workflow == "hr-onboarding"


def test_an_unknown_parent_is_a_validation_error_and_nothing_is_written(gate):
    with pytest.raises(ValidationFailed):
        gate(execution__parent_thread_id="nope")
    assert not GateCheck.objects.exists() and not AuditEvent.objects.exists()


def test_a_sub_agent_execution_links_to_its_parent(gate, policy):
    policy("all", effect="allow")
    gate()
    gate(execution__thread_id="sub-1", execution__parent_thread_id="onboard-42")
    assert Execution.objects.get(thread_id="sub-1").parent.thread_id == "onboard-42"


def test_asking_again_for_the_same_open_step_returns_its_packet(gate):
    first = gate()["approval"]["id"]
    assert gate()["approval"]["id"] == first
    assert PausePacket.objects.count() == 1


def test_asking_for_another_action_on_an_open_step_is_refused(gate):
    gate()
    with pytest.raises(InvalidState):
        gate(action__args={"user": "someone.else"})


@pytest.mark.parametrize("side_effect", ["landed", "indeterminate"])
def test_a_write_that_may_have_happened_is_never_allowed(gate, policy, side_effect):
    policy("everything", effect="allow")
    response = gate(action__side_effect=side_effect)
    assert response["decision"] == "require_approval"
    assert PausePacket.objects.get().side_effect == side_effect


def test_each_gate_check_is_recorded_with_its_packet(gate, agent):
    response = gate()
    kinds = list(AuditEvent.objects.values_list("kind", "actor"))
    assert kinds == [("gate.checked", "service:agent"), ("packet.created", "service:agent")]
    checked = AuditEvent.objects.get(kind="gate.checked")
    assert checked.data["check_id"] == response["check_id"]
    assert checked.data["decision"] == "require_approval"


def test_gating_an_open_step_again_as_indeterminate_sends_its_approval_to_reconcile(gate, alice):
    from approvals.services.review import packet_approve

    first = gate()["approval"]["id"]
    again = gate(action__side_effect="indeterminate")
    assert again["approval"]["id"] == first
    packet_approve(packet_id=first, user=alice)
    assert PausePacket.objects.get(id=first).status == "reconciling"


def test_the_answer_for_an_open_step_counts_its_votes(gate, policy, alice):
    from approvals.services.review import packet_approve

    policy("two", required_approvals=2)
    first = gate()["approval"]["id"]
    packet_approve(packet_id=first, user=alice)
    assert gate()["approval"]["approvals"] == 1
