"""GatekeeperToolHook in a real crew (the example's, with recording tools), in .venv-crewai."""

import json
from pathlib import Path

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.integrations.conftest import (
    STARTUP,
    approve_after_refresh,
    expire,
    packets_of,
    reconcile_as_applied,
)
from tests.integrations.crewai.conftest import run_in_crewai

DRIVER = Path(__file__).with_name("driver.py")
GRANT = ("iam.grant", {"user": "jdoe", "role": "admin"})


def run_crew(live_server, token, python, thread_id, *flags) -> dict:
    arguments = [str(DRIVER), "--thread-id", thread_id, *flags]
    return json.loads(run_in_crewai(python, arguments, live_server, token).splitlines()[-1])


def test_allowed_calls_run_and_a_blocked_one_is_refused_while_the_crew_goes_on(
    live_server, gk_account, gk, policy, crewai_python, offline
):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    run = run_crew(live_server, gk_account[1], crewai_python, "cr-block")
    assert run["calls"] == [["hr.lookup", {"employee_id": 7}]]
    ((tool, reason),) = run["refusals"]
    assert tool == "iam.grant" and "no-grants" in reason
    assert run["seen"] == ["Jane Doe", reason] and run["output"] == "onboarding done"
    steps = gk.execution("cr-block")["steps"]
    assert [(s["index"], s["name"], s["decision"], s["outcome"]) for s in steps] == [
        (0, "hr_lookup", "allow", "landed"),
        (1, "iam_grant", "block", None),
    ]


def test_an_expired_approval_is_a_refused_call(
    live_server, gk_account, onboarding_policies, in_background, crewai_python, offline
):
    in_background(lambda: expire(next_packet("cr-expire", timeout=STARTUP)))
    run = run_crew(live_server, gk_account[1], crewai_python, "cr-expire")
    assert [call[0] for call in run["calls"]] == ["hr.lookup"]
    assert run["seen"][1].startswith("expired: ") and run["output"] == "onboarding done"


def test_a_stale_approval_is_refreshed_through_the_hook_then_approved(
    live_server, gk_account, onboarding_policies, alice, in_background, crewai_python, offline
):
    in_background(lambda: approve_after_refresh("cr-stale", alice, timeout=STARTUP))
    run = run_crew(live_server, gk_account[1], crewai_python, "cr-stale", "--refresh")
    assert run["reads"] == 1 and run["calls"][1] == list(GRANT)
    assert [p.status for p in packets_of("cr-stale")] == ["superseded", "approved"]


def test_a_write_of_unknown_outcome_is_reconciled_and_never_run_again(
    live_server, gk_account, gk, onboarding_policies, alice, in_background, crewai_python, offline
):
    in_background(lambda: reconcile_as_applied("cr-unknown", alice, timeout=STARTUP))
    run = run_crew(live_server, gk_account[1], crewai_python, "cr-unknown", "--grant-unknown")
    assert [call[0] for call in run["calls"]] == ["hr.lookup", "iam.grant"]
    assert "already applied" in run["seen"][1]
    assert gk.execution("cr-unknown")["steps"][1]["outcome"] == "landed"


def test_a_crew_that_stopped_waiting_is_run_again_and_asks_once(
    live_server, gk_account, onboarding_policies, alice, crewai_python, offline
):
    token = gk_account[1]
    first = run_crew(live_server, token, crewai_python, "cr-again", "--wait-timeout", "0")
    packet = next_packet("cr-again")
    assert first["seen"][1].startswith(f"not run: approval {packet.id} is still pending")
    assert first["refusals"] == [] and [call[0] for call in first["calls"]] == ["hr.lookup"]

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    again = run_crew(live_server, token, crewai_python, "cr-again", "--wait-timeout", "0")
    assert again["calls"] == [["iam.grant", {"user": "jdoe", "role": "dev"}]]
    assert len(packets_of("cr-again")) == 1
