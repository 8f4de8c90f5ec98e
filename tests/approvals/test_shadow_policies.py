"""Shadow policies: evaluated on every gate check, stored with it, never changing the answer."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.events import EventKind
from approvals.models import GateCheck, Policy, PolicyVersion
from approvals.services.policies import policy_promote
from audit.models import AuditEvent


def _shadow(check: GateCheck) -> dict:
    return {entry["policy"]: entry for entry in check.shadow}


def test_a_shadow_policy_never_changes_the_answer_and_its_verdict_is_stored(gate, policy):
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    policy("no-iam", effect="block", priority=10, match={"tool": "iam.*"}, mode="shadow")
    response = gate()
    assert response["decision"] == "allow"
    assert response["policy"] == {"name": "reads", "version": 1}
    check = GateCheck.objects.get()
    assert (check.decision, check.policy_name) == ("allow", "reads")
    assert check.shadow == [
        {"policy": "no-iam", "version": 1, "decision": "block", "decided_by": "no-iam",
         "differs": True}
    ]  # fmt: skip


def test_each_shadow_policy_is_evaluated_alone_beside_the_enforced_ones(gate, policy):
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    # Ranks after the enforced policy that decides: it would never get to decide.
    policy("late-block", effect="block", priority=90, match={"tool": "iam.*"}, mode="shadow")
    policy("agrees", effect="allow", priority=1, mode="shadow")
    policy("elsewhere", effect="block", priority=1, match={"tool": "mail.*"}, mode="shadow")
    policy("asks", effect="require_approval", priority=5, mode="shadow")
    policy("off", effect="block", priority=1, mode="shadow", enabled=False)
    assert gate()["decision"] == "allow"
    shadow = _shadow(GateCheck.objects.get())
    assert set(shadow) == {"late-block", "agrees", "elsewhere", "asks"}
    assert shadow["late-block"] == {
        "policy": "late-block", "version": 1, "decision": "allow", "decided_by": "reads",
        "differs": False,
    }  # fmt: skip
    assert (shadow["agrees"]["decided_by"], shadow["agrees"]["differs"]) == ("agrees", False)
    assert (shadow["elsewhere"]["decided_by"], shadow["elsewhere"]["differs"]) == ("reads", False)
    assert (shadow["asks"]["decision"], shadow["asks"]["differs"]) == ("require_approval", True)


def test_a_shadow_allow_of_an_unsettled_side_effect_still_asks_a_human(gate, policy, alice):
    policy("all-ok", effect="allow", mode="shadow")
    response = gate(action__side_effect="indeterminate")
    assert response["decision"] == "require_approval"
    entry = GateCheck.objects.get().shadow[0]
    assert (entry["decision"], entry["differs"]) == ("require_approval", False)


def test_without_shadow_policies_nothing_is_stored(gate, policy):
    policy("reads", effect="allow", match={"tool": "iam.*"})
    gate()
    assert GateCheck.objects.get().shadow is None


def test_three_shadow_policies_keep_an_allowed_check_at_two_round_trips(gate, policy):
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    for n, effect in enumerate(("block", "require_approval", "allow")):
        policy(f"shadow-{n}", effect=effect, priority=n, mode="shadow")
    with CaptureQueriesContext(connection) as captured:
        assert gate()["decision"] == "allow"
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    sent = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(control)]
    assert len(sent) == 2
    assert "INSERT INTO approvals_gatecheck" in sent[1] and "shadow" in sent[1]
    assert len(GateCheck.objects.get().shadow) == 3


def test_a_shadow_policy_makes_no_packet_of_its_own(gate, policy, alice):
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    policy("asks", effect="require_approval", priority=1, mode="shadow")
    response = gate()
    assert response["approval"] is None
    assert not GateCheck.objects.get().packets.exists()


def test_promotion_is_a_version_in_the_record_and_then_decides(gate, policy):
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    shadow = policy("no-iam", effect="block", priority=10, match={"tool": "iam.*"}, mode="shadow")
    assert gate()["decision"] == "allow"
    promoted, changed = policy_promote(policy=shadow, actor="user:admin")
    assert changed and (promoted.mode, promoted.version) == ("enforce", 2)
    version = PolicyVersion.objects.get(policy=promoted, version=2)
    assert (version.document["mode"], version.changed_by) == ("enforce", "user:admin")
    event = AuditEvent.objects.filter(kind=EventKind.POLICY_CHANGED).latest("id")
    assert event.data["policy"] == "no-iam" and event.data["version"] == 2
    assert event.data["document"]["mode"] == "enforce" and event.actor == "user:admin"
    response = gate()
    assert response["decision"] == "block"
    assert response["policy"] == {"name": "no-iam", "version": 2}
    assert GateCheck.objects.get(decision="block").shadow is None


def test_promoting_an_enforced_policy_changes_nothing(policy):
    enforced = policy("reads", effect="allow")
    events = AuditEvent.objects.count()
    _, changed = policy_promote(policy=enforced, actor="user:admin")
    assert not changed
    assert (Policy.objects.get().version, AuditEvent.objects.count()) == (1, events)


@pytest.mark.parametrize("mode", ["shadow", "enforce"])
def test_the_dry_run_trace_says_a_shadow_policy_never_decides(policy, mode):
    from approvals.gate_request import parse_gate_request
    from approvals.services.policies import policy_verdict
    from tests.conftest import gate_body

    policy("no-iam", effect="block", match={"tool": "iam.*"}, mode=mode)
    verdict = policy_verdict(parse_gate_request(gate_body()))
    if mode == "shadow":
        assert verdict.trace == ("no-iam: shadow, never decides",)
        assert verdict.decision == "require_approval"
    else:
        assert verdict.decision == "block"
