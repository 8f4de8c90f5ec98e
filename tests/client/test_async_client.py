"""AsyncGatekeeperClient against a live server: the blocking client's behaviour, awaited.

Each test runs its client in one event loop (`asyncio.run`); the database is read outside it,
and reviewers act from threads as another process would, a moment after the client has the
approval in hand: a long-poll that starts after the decision waits its whole time today (the
server waits for the status it reads first to change; issue 15 adds `seen`).
"""

import asyncio
import inspect
import socket
import time

import pytest
from gatekeeper_client import (
    Approval,
    AsyncGatekeeperClient,
    Blocked,
    GateDecision,
    GatekeeperClient,
    NotFound,
    OutcomeUnknown,
    Unauthorized,
    Unavailable,
)

from approvals.models import GateCheck, PausePacket, StepOutcome
from approvals.services.review import packet_approve
from tests.client.conftest import CONTEXT, next_packet, stale_then_approve, step

GATE = ("onboard-42", "hr-onboarding", 2, "set_privileges", "iam.grant", {"user": "jdoe"})


@pytest.fixture
def run_async(live_server, gk_account):
    """Run `scenario(client)` in a fresh event loop with an AsyncGatekeeperClient, closed after."""

    def run(scenario, *, url=None, token=None, **options):
        async def main():
            options.setdefault("backoff", 0.01)
            options.setdefault("timeout", 10)
            client = AsyncGatekeeperClient(
                url or live_server.url, token or gk_account[1], **options
            )
            async with client:
                return await scenario(client)

        return asyncio.run(main())

    return run


def test_an_allowed_async_step_runs_and_records_that_it_landed(run_async, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})
    calls, updates = [], []

    async def scenario(agk):
        @agk.gated(
            **step(),
            on_update=_async(updates.append),
            outcome_detail=_async(lambda result: {"granted": result}),
        )
        async def set_privileges(user, role="viewer"):
            await asyncio.sleep(0)
            calls.append((user, role))
            return role

        assert inspect.iscoroutinefunction(set_privileges)
        return await set_privileges("jdoe", role="admin")

    assert run_async(scenario) == "admin"
    assert calls == [("jdoe", "admin")]
    assert [u.decision for u in updates if isinstance(u, GateDecision)] == ["allow"]
    outcome = StepOutcome.objects.get()
    assert (outcome.side_effect, outcome.detail) == ("landed", {"granted": "admin"})
    assert GateCheck.objects.get().request["action"]["args"] == {"user": "jdoe", "role": "admin"}


def test_an_approval_runs_the_tool_with_the_reviewers_edit(run_async, policy, alice, in_background):
    policy("grants", approvers="reviewers", allow_edit=True, match={"tool": "iam.*"})

    def approve_once_waiting(update):
        if isinstance(update, Approval) and update.status == "pending":
            edit = {"user": "jdoe", "role": "viewer"}
            in_background(
                lambda: packet_approve(packet_id=update.id, user=alice, edited_args=edit),
                delay=0.5,
            )

    calls = []

    async def set_privileges(user, role):
        calls.append((user, role))
        return "done"

    async def scenario(agk):
        return await agk.run_step(
            set_privileges,
            {"user": "jdoe", "role": "admin"},
            on_update=approve_once_waiting,
            **step(),
        )

    assert run_async(scenario) == "done"
    assert calls == [("jdoe", "viewer")]
    assert StepOutcome.objects.get().side_effect == "landed"


def test_a_plain_function_is_gated_by_the_async_client_too(run_async, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})

    async def scenario(agk):
        @agk.gated(**step())
        def set_privileges(user):
            return f"granted to {user}"

        return await set_privileges("jdoe")

    assert run_async(scenario) == "granted to jdoe"


def test_a_blocked_step_raises_and_the_tool_never_runs(run_async, policy):
    policy("no-grants", effect="block", match={"tool": "iam.*"})
    calls = []

    async def tool(**args):
        calls.append(args)

    async def scenario(agk):
        await agk.run_step(tool, {"user": "jdoe"}, **step())

    with pytest.raises(Blocked) as blocked:
        run_async(scenario)
    assert calls == [] and "no-grants" in blocked.value.reason


def test_a_stale_approval_is_refreshed_with_an_async_refresh_context(
    run_async, alice, in_background
):
    def review():
        stale = stale_then_approve("onboard-42", alice)
        fresh = next_packet("onboard-42", exclude=[stale.id])
        time.sleep(0.5)
        packet_approve(packet_id=fresh.id, user=alice)

    async def read_again():
        await asyncio.sleep(0)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    async def scenario(agk):
        return await agk.run_step(
            _async(lambda **args: "done"), {"user": "jdoe"}, refresh_context=read_again, **step()
        )

    in_background(review)
    assert run_async(scenario) == "done"
    old, new = PausePacket.objects.order_by("created_at")
    assert (old.status, old.superseded_by_id, new.status) == ("superseded", new.id, "approved")
    assert new.context[0]["value"] == {"id": 7, "title": "Engineer"}


def test_an_async_tool_unsure_whether_its_write_happened_records_indeterminate(run_async, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})

    async def tool(**args):
        raise OutcomeUnknown("timed out after sending", detail={"request_id": "r-1"})

    async def scenario(agk):
        await agk.run_step(tool, {"user": "jdoe"}, **step())

    with pytest.raises(OutcomeUnknown):
        run_async(scenario)
    outcome = StepOutcome.objects.get()
    assert (outcome.side_effect, outcome.detail) == ("indeterminate", {"request_id": "r-1"})


def test_the_api_calls_one_by_one(run_async, alice, in_background, make_user):
    make_user("lee", "it-leads")  # an owner must exist: the API never creates one

    async def scenario(agk):
        decision = await agk.check(*GATE, context=CONTEXT)
        assert decision.needs_approval
        still = await agk.wait(decision.approval.id, timeout=1)
        in_background(lambda: packet_approve(packet_id=decision.approval.id, user=alice), delay=0.5)
        decided = await agk.wait(decision.approval.id, timeout=15)
        landed = await agk.record_outcome("onboard-42", 2, "landed", {"ok": True})
        owner = await agk.change_owner("onboard-42", "it-leads", "handoff")
        return still, decided, landed, owner, await agk.execution("onboard-42")

    still, decided, landed, owner, execution = run_async(scenario)
    assert (still.status, decided.status, decided.decided_by) == ("pending", "approved", ("alice",))
    assert landed is True and owner["owner"] == "it-leads"
    assert [(s["index"], s["outcome"]) for s in execution["steps"]] == [(2, "landed")]


def test_waiting_steps_of_several_executions_share_one_event_loop(run_async, alice, in_background):
    threads = ["onboard-1", "onboard-2", "onboard-3"]

    def review():
        # Every packet is asked for before any is decided: the three steps wait side by side.
        packets = [next_packet(thread) for thread in threads]
        time.sleep(0.5)
        for packet in packets:
            packet_approve(packet_id=packet.id, user=alice)

    async def scenario(agk):
        return await asyncio.gather(
            *(
                agk.run_step(
                    _async(lambda thread=thread, **args: thread),
                    {"user": "jdoe"},
                    wait_timeout=30,
                    **step(thread_id=thread),
                )
                for thread in threads
            )
        )

    in_background(review)
    assert run_async(scenario) == threads
    assert StepOutcome.objects.filter(side_effect="landed").count() == 3


def test_error_answers_are_the_same_typed_errors(run_async):
    async def scenario(agk):
        with pytest.raises(NotFound) as missing:
            await agk.execution("never-gated")
        return missing.value

    missing = run_async(scenario)
    assert (missing.status, missing.code) == (404, "not_found")

    async def wrong_token(agk):
        await agk.check(*GATE)

    with pytest.raises(Unauthorized) as refused:
        run_async(wrong_token, token="gk_not-a-token")
    assert "gk_not-a-token" not in str(refused.value)


def test_dropped_connections_and_503_are_retried_and_a_lost_answer_replays(run_async, flaky_proxy):
    proxy = flaky_proxy(["drop", "503", "lost"])

    async def scenario(agk):
        return await agk.check(*GATE)

    decision = run_async(scenario, url=proxy.url)
    assert decision.needs_approval
    assert proxy.seen == ["drop", "503", "lost", "forward"]
    assert str(GateCheck.objects.get().id) == decision.check_id


def test_no_server_at_all_is_unavailable_after_the_retries(run_async):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario(agk):
        await agk.check(*GATE)

    with pytest.raises(Unavailable) as error:
        run_async(scenario, url=f"http://127.0.0.1:{port}", retries=1)
    assert error.value.status is None and "no answer" in error.value.message


def test_the_blocking_client_refuses_an_async_function(gk):
    async def set_privileges(user):
        pass

    with pytest.raises(TypeError, match="AsyncGatekeeperClient"):
        gk.gated(**step())(set_privileges)
    assert isinstance(gk, GatekeeperClient) and not GateCheck.objects.exists()


def test_both_clients_have_the_same_methods_with_the_same_signatures():
    api = ["check", "approval", "wait", "refresh", "record_outcome", "change_owner", "execution"]
    for name in [*api, "run_step", "gated"]:
        blocking = getattr(GatekeeperClient, name)
        awaited = getattr(AsyncGatekeeperClient, name)
        assert inspect.signature(blocking) == inspect.signature(awaited), name
        assert inspect.iscoroutinefunction(awaited) == (name != "gated"), name
        assert not inspect.iscoroutinefunction(blocking) and blocking.__doc__ == awaited.__doc__
    # help() shows the method, not the flow behind it.
    assert str(inspect.signature(GatekeeperClient.approval)) == (
        "(self, approval_id: 'str', *, wait: 'int' = 0, seen: 'str | None' = None) -> 'Approval'"
    )


def _async(fn):
    """`fn` as an async function, to show the client awaits the caller's hooks."""

    async def call(*args, **kwargs):
        return fn(*args, **kwargs)

    return call
