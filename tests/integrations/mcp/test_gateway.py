"""The MCP gateway end to end: the official SDK's client -> gateway -> upstream, a live
Gatekeeper deciding, reviewers acting in other threads; over stdio and streamable HTTP."""

import threading
import time
from datetime import timedelta

import anyio
from django.utils import timezone

from approvals.models import Execution, PausePacket
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet

from .conftest import WORKFLOW, run, text_of


def outcomes(gk, thread_id: str) -> list:
    return [(step["index"], step["outcome"]) for step in gk.execution(thread_id)["steps"]]


def ran(connect, tool: str) -> list[str]:
    return [line for line in connect.log() if line.startswith(f"RAN {tool} ")]


def test_tools_resources_and_prompts_are_served_as_the_upstream_offers_them(connect, write_config):
    config = write_config(thread_id="mcp-catalogue")

    async def scenario():
        async with connect(config) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            resources = (await session.list_resources()).resources
            handbook = await session.read_resource("hr://handbook")
            prompt = await session.get_prompt("welcome", {"name": "Jane"})
            return tools, resources, handbook, prompt

    tools, resources, handbook, prompt = run(scenario)
    assert {"hr.lookup", "iam.grant", "db.drop", "report.fail"} <= set(tools)
    grant = tools["iam.grant"]
    assert grant.input_schema["required"] == ["user", "role"]
    assert grant.annotations.destructive_hint is True
    assert tools["hr.lookup"].annotations.read_only_hint is True
    assert grant.description.startswith("Give `user` the IAM role")
    assert [str(resource.uri) for resource in resources] == ["hr://handbook"]
    assert handbook.contents[0].text == "Be kind."
    assert "Write a warm welcome for Jane." in prompt.messages[0].content.text


def test_tools_list_says_which_tools_need_a_human_from_a_dry_run_that_writes_nothing(
    connect, write_config
):
    config = write_config(thread_id="mcp-listing")

    async def scenario():
        async with connect(config) as session:
            return {tool.name: tool.description for tool in (await session.list_tools()).tools}

    descriptions = run(scenario)
    upstream = {name: text.split("\n\n")[0] for name, text in descriptions.items()}
    assert descriptions["iam.grant"] == (
        f"{upstream['iam.grant']}\n\nNeeds a human's approval (policy iam-grants) before it "
        "runs; the call waits for their decision."
    )
    assert descriptions["db.drop"].endswith("refuses calls to this tool (policy no-drops).")
    # Allowed tools (a read-only one by its annotation, report.* by name) read as upstream wrote.
    assert descriptions["hr.lookup"] == upstream["hr.lookup"]
    assert descriptions["report.fail"] == upstream["report.fail"]
    # Listing asked the gate nothing: no execution, no check, no approval.
    assert not Execution.objects.exists() and not PausePacket.objects.exists()


def test_when_the_dry_run_fails_tools_list_still_answers_without_notes(connect, write_config):
    config = write_config(thread_id="mcp-no-notes", token="gk_not-a-token")

    async def scenario():
        async with connect(config) as session:
            return {tool.name: tool.description for tool in (await session.list_tools()).tools}

    descriptions = run(scenario)
    assert "iam.grant" in descriptions and "db.drop" in descriptions
    assert not any("Gatekeeper" in text or "approval" in text for text in descriptions.values())
    assert any("dry run failed" in line for line in connect.log())


def test_an_allowed_call_is_forwarded_and_its_outcome_recorded_as_landed(connect, write_config, gk):
    config = write_config(thread_id="mcp-allow")

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("hr.lookup", {"employee_id": 7})

    result = run(scenario)
    assert not result.is_error
    assert "Jane Doe" in text_of(result)
    assert ran(connect, "hr.lookup") == ['RAN hr.lookup {"employee_id": 7}']
    assert outcomes(gk, "mcp-allow") == [(0, "landed")]


def test_a_blocked_call_reaches_the_model_as_an_error_and_never_the_upstream(
    connect, write_config, gk
):
    config = write_config(thread_id="mcp-block")

    async def scenario():
        async with connect(config) as session:
            result = await session.call_tool("db.drop", {"table": "users"})
            return result, {tool.name: tool for tool in (await session.list_tools()).tools}

    result, tools = run(scenario)
    assert tools["db.drop"].description.endswith("refuses calls to this tool (policy no-drops).")
    assert result.is_error
    assert text_of(result).startswith("db.drop was not called: Gatekeeper refused it")
    assert "no-drops" in text_of(result)
    assert ran(connect, "db.drop") == []


def test_an_approval_with_edits_runs_the_edited_args_while_progress_keeps_the_client_waiting(
    connect, write_config, gk, make_user, in_background
):
    config = write_config(thread_id="mcp-edit")
    alice = make_user("alice", "it-approvers")

    def review():
        packet = next_packet("mcp-edit", timeout=90)
        time.sleep(2.5)  # long enough for progress notifications to flow
        packet_approve(packet_id=packet.id, user=alice, edited_args={**packet.args, "scope": "lab"})

    in_background(review)
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool(
                "iam.grant", {"user": "jdoe", "role": "admin"}, progress_callback=on_progress
            )

    result = run(scenario)
    assert not result.is_error, text_of(result)
    assert text_of(result) == "granted admin to jdoe on lab"
    assert ran(connect, "iam.grant") == [
        'RAN iam.grant {"role": "admin", "scope": "lab", "user": "jdoe"}'
    ]
    assert len(progress) >= 2, progress
    assert all("iam.grant is waiting for a human's approval" in m for _, m in progress)
    assert "/approvals/" in progress[0][1]
    assert [value for value, _ in progress] == sorted(value for value, _ in progress)
    assert outcomes(gk, "mcp-edit") == [(0, "landed")]


def test_a_rejection_reaches_the_model_with_the_reviewers_reason(
    connect, write_config, make_user, in_background
):
    config = write_config(thread_id="mcp-reject")
    bob = make_user("bob", "it-approvers")
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("mcp-reject", timeout=90).id,
            user=bob,
            comment="admin is too broad",
        )
    )

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("iam.grant", {"user": "jdoe", "role": "admin"})

    result = run(scenario)
    assert result.is_error
    assert "rejected by bob: admin is too broad" in text_of(result)
    assert "Do not retry it unchanged" in text_of(result)
    assert ran(connect, "iam.grant") == []


def test_an_approval_that_expires_while_the_client_waits_is_refused(
    connect, write_config, in_background
):
    config = write_config(thread_id="mcp-expire")

    def expire():
        next_packet("mcp-expire", timeout=90)
        # The sweep, run as if its deadline (a day away) had passed.
        assert packets_expire_overdue(now=timezone.now() + timedelta(days=2)) == 1

    in_background(expire, delay=0.5)

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("iam.grant", {"user": "jdoe", "role": "admin"})

    result = run(scenario)
    assert result.is_error
    assert "expired: nobody decided before" in text_of(result)
    assert ran(connect, "iam.grant") == []


def test_a_stale_approval_asks_the_upstream_nothing_and_says_the_context_went_stale(
    connect, write_config, make_user, in_background
):
    config = write_config(thread_id="mcp-stale")
    alice = make_user("alice", "it-approvers")

    def stale_then_approve():
        packet = next_packet("mcp-stale", timeout=90)
        PausePacket.objects.filter(id=packet.id).update(
            fresh_until=timezone.now() - timedelta(seconds=1)
        )
        packet_approve(packet_id=packet.id, user=alice)

    in_background(stale_then_approve)

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("iam.grant", {"user": "jdoe", "role": "admin"})

    result = run(scenario)
    assert result.is_error
    assert "went stale" in text_of(result)
    assert ran(connect, "iam.grant") == []


def test_one_client_waiting_for_a_human_never_stalls_another(
    connect, write_config, make_user, in_background
):
    config = write_config()  # thread_id from each client's MCP session
    alice = make_user("alice", "it-approvers")
    approved = threading.Event()
    served_while_waiting = []

    def review():
        packet = next_packet_of_workflow()
        time.sleep(3)
        approved.set()
        packet_approve(packet_id=packet.id, user=alice)

    in_background(review)

    async def waiting_client():
        async with connect(config) as session:
            return await session.call_tool("iam.grant", {"user": "jdoe", "role": "admin"})

    async def other_client():
        async with connect(config) as session:
            for employee in (7, 8):
                result = await session.call_tool("hr.lookup", {"employee_id": employee})
                assert not result.is_error
                served_while_waiting.append(not approved.is_set())

    async def scenario():
        results = {}
        async with anyio.create_task_group() as tasks:

            async def wait():
                results["wait"] = await waiting_client()

            tasks.start_soon(wait)
            await anyio.sleep(0.5)
            tasks.start_soon(other_client)
        return results["wait"]

    result = run(scenario)
    assert not result.is_error, text_of(result)
    assert served_while_waiting == [True, True]
    threads = {
        e.thread_id: sorted(c.step_index for c in e.gate_checks.all())
        for e in Execution.objects.all()
    }
    assert sorted(threads.values()) == [[0], [0, 1]], threads
    assert all(thread.startswith("mcp-") for thread in threads)


def next_packet_of_workflow(timeout: float = 90) -> PausePacket:
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        packet = PausePacket.objects.filter(status="pending").first()
        if packet is not None:
            return packet
        time.sleep(0.05)
    raise AssertionError("no pending packet")


def test_an_upstream_error_is_passed_on_and_recorded_as_failed(connect, write_config, gk):
    config = write_config(thread_id="mcp-fail")

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("report.fail", {"reason": "disk full"})

    result = run(scenario)
    assert result.is_error
    assert "report service down: disk full" in text_of(result)
    assert outcomes(gk, "mcp-fail") == [(0, "failed")]


def test_an_upstream_killed_mid_call_is_indeterminate_and_the_next_call_reconnects(
    connect, write_config, gk
):
    config = write_config(thread_id="mcp-die")

    async def scenario():
        async with connect(config) as session:
            died = await session.call_tool("report.die", {})
            with anyio.fail_after(30):
                again = await session.call_tool("hr.lookup", {"employee_id": 7})
            return died, again

    died, again = run(scenario)
    assert died.is_error
    assert "may or may not have taken effect" in text_of(died)
    assert not again.is_error, text_of(again)
    assert outcomes(gk, "mcp-die") == [(0, "indeterminate"), (1, "landed")]


def test_an_upstream_over_streamable_http_is_fronted_the_same_way(
    connect, write_config, http_upstream, gk
):
    url, upstream_err = http_upstream
    config = write_config(thread_id="mcp-http-upstream", upstream_url=url)

    async def scenario():
        async with connect(config) as session:
            return await session.call_tool("hr.lookup", {"employee_id": 7})

    result = run(scenario)
    assert not result.is_error, text_of(result)
    assert 'RAN hr.lookup {"employee_id": 7}' in upstream_err.lines
    assert outcomes(gk, "mcp-http-upstream") == [(0, "landed")]
    assert gk.execution("mcp-http-upstream")["workflow"] == WORKFLOW
