"""`dry_run`: what the gate would answer for each action, blocking and awaited; nothing recorded."""

import asyncio

import pytest
from gatekeeper_client import AsyncGatekeeperClient, DryRunResult, PolicyRef, ValidationError

from approvals.models import Execution, GateCheck, PausePacket

ACTIONS = [
    "hr.lookup",
    {"tool": "payments.send", "args": {"amount": 20000}},
    {"tool": "payments.send", "args": {"amount": 5}, "side_effect": "indeterminate"},
    {"tool": "db.drop", "risk": {"score": 0.9, "labels": ["destructive"]}},
]


@pytest.fixture
def policies(policy):
    policy("lookups", effect="allow", priority=1, match={"tool": "hr.lookup"})
    policy("big", priority=2, match={"conditions": [{"path": "amount", "op": "gt", "value": 100}]})
    policy("destructive", effect="block", priority=3, match={"labels_any": ["destructive"]})
    policy("rest", effect="allow", priority=4)


def assert_foreseen(results):
    assert [(r.tool, r.decision, r.policy) for r in results] == [
        ("hr.lookup", "allow", PolicyRef("lookups", 1)),
        ("payments.send", "require_approval", PolicyRef("big", 1)),
        ("payments.send", "require_approval", PolicyRef("rest", 1)),  # unsettled: a human
        ("db.drop", "block", PolicyRef("destructive", 1)),
    ]
    assert all(isinstance(r, DryRunResult) for r in results)
    assert [r.needs_approval for r in results] == [False, True, True, False]
    assert not (Execution.objects.exists() or GateCheck.objects.exists())
    assert not PausePacket.objects.exists()


def test_the_blocking_client_foresees_each_action_and_records_nothing(gk, policies):
    assert_foreseen(gk.dry_run("hr-onboarding", ACTIONS))


def test_the_async_client_foresees_the_same(live_server, gk_account, policies):
    async def main():
        async with AsyncGatekeeperClient(live_server.url, gk_account[1], backoff=0.01) as gk:
            return await gk.dry_run("hr-onboarding", ACTIONS)

    assert_foreseen(asyncio.run(main()))


def test_an_unknown_owner_raises_validation_error_naming_the_check(gk, policies):
    with pytest.raises(ValidationError) as raised:
        gk.dry_run("hr-onboarding", ["a", "b"], owner="no-such-group")
    fields = [item["field"] for item in raised.value.details["errors"]]
    assert fields == ["checks[0].execution.owner", "checks[1].execution.owner"]


def test_an_action_with_a_key_the_api_lacks_is_refused_before_sending(gk):
    with pytest.raises(TypeError, match="step_index"):
        gk.dry_run("hr-onboarding", [{"tool": "a", "step_index": 3}])
