"""Every example agent against the demo server, decided by reviewers in a real browser.

Each example of EXAMPLES runs as an agent would (its own process, GATEKEEPER_URL and
GATEKEEPER_TOKEN, `--thread-id`) against `seed_demo`'s data and policies, where iam.grant needs
two IT approvers (policy privileged-iam). alice and bob log in with the demo password and
decide the grant's packet on its page: alice edits the args and approves, bob approves too, in
one run; alice rejects in the other. The run's RAN / DENIED / DONE lines keep DESIGN section
11's contract, verify_audit passes, and the execution's record has every outcome and no gap.
An example whose framework pins conflict with the other extras (CrewAI, Airflow) runs with the
interpreter of its own environment.

Run alone: `python3 manage.py test tests/integrations/demo` (or `-m demo_examples`).
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from gatekeeper_client import GatekeeperClient
from playwright.sync_api import expect

from approvals.models import PausePacket
from tests.integrations.crewai import environment as crewai_environment
from tests.integrations.engines import airflow_env

pytestmark = pytest.mark.demo_examples
USES_DATABASE = pytest.mark.django_db
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"


@dataclass(frozen=True)
class Example:
    file: str
    arguments: tuple[str, ...] = ()  # beyond --thread-id
    # The interpreter of the environment it runs in (built on first use), if not this one.
    python: Callable[[], str] | None = None


# One line per example agent that keeps the contract (hr.lookup, then iam.grant, then DONE).
EXAMPLES = [
    Example("langgraph_agent.py"),
    Example("openai_agents_agent.py"),
    Example("mcp_agent.py"),
    Example("pydantic_ai_agent.py"),
    Example("autogen_agent.py"),
    Example("crewai_agent.py", python=crewai_environment.python),
    Example("dagster_agent.py"),
    Example("stepfunctions_agent.py"),
    Example("temporal_agent.py"),
    Example("prefect_agent.py"),
    Example("airflow_agent.py", python=lambda: str(airflow_env.ensure())),
]
# Examples with a contract of their own, and why they are not in EXAMPLES.
OTHER_AGENTS = {
    "hr_onboarding_agent.py": "the demo's own agent: four steps, an email among them",
}

CONTRACT = ("RAN ", "DENIED ", "DONE")
LOOKUP = 'RAN hr.lookup {"employee_id": 7}'
EDITED = {"user": "jdoe", "role": "viewer"}
REASON = "admin is too much for a new hire"
APPROVED = "Approved: the orchestrator may run the step with the edited args."
PACKET_SECONDS = 150  # an engine's dev server starts before the first gate check
RUN_SECONDS = 240


def test_every_example_agent_is_in_the_table():
    agents = {path.name for path in EXAMPLES_DIR.glob("*_agent.py")}
    assert agents == {example.file for example in EXAMPLES} | set(OTHER_AGENTS)


def grant_packet(account, process, output) -> PausePacket:
    """The example's iam.grant packet once it is pending (the demo's own are another account's)."""
    deadline = time.monotonic() + PACKET_SECONDS
    while time.monotonic() < deadline:
        packet = (
            PausePacket.objects.select_related("execution")
            .filter(execution__service_account=account, status="pending", tool="iam.grant")
            .first()
        )
        if packet is not None:
            return packet
        assert process.poll() is None, f"the example ended without a packet:\n{output()}"
        time.sleep(0.2)
    raise AssertionError(f"no iam.grant packet within {PACKET_SECONDS} s:\n{output()}")


def run_with_reviewers(demo, example: Example, decide, tmp_path):
    """Run the example; `decide(packet)` acts in the browser once its grant waits.

    Returns the contract's lines and the execution's thread id.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "PREFECT_", "GATEKEEPER_"))
    }
    env.update(GATEKEEPER_URL=demo.url, GATEKEEPER_TOKEN=demo.token, PYTHONUNBUFFERED="1")
    thread_id = f"demo-{Path(example.file).stem}-{uuid.uuid4().hex[:8]}"
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    python = example.python() if example.python else sys.executable
    argv = [python, str(EXAMPLES_DIR / example.file), "--thread-id", thread_id]
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(
            [*argv, *example.arguments], env=env, stdout=out, stderr=err, cwd=tmp_path
        )

    def output() -> str:
        return f"--- stdout ---\n{out_path.read_text()}\n--- stderr ---\n{err_path.read_text()}"

    try:
        packet = grant_packet(demo.account, process, output)
        decide(packet)
        process.wait(RUN_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, output()
    lines = [line for line in out_path.read_text().splitlines() if line.startswith(CONTRACT)]
    return lines, packet.execution.thread_id, output


def open_packet(page, packet):
    page.goto(f"/approvals/{packet.id}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(packet.execution.thread_id)


def approve_with_edit(reviewers):
    def decide(packet):
        alice, bob = reviewers["alice"], reviewers["bob"]
        open_packet(alice, packet)
        alice.get_by_label("Args to run").fill(json.dumps(EDITED))
        alice.get_by_role("button", name="Approve").click()
        # privileged-iam wants two approvers: the edit is alice's vote, bob adds his.
        expect(alice.locator("#decision")).to_contain_text("Another reviewer must add theirs")
        open_packet(bob, packet)
        expect(bob.locator("pre.json").first).to_contain_text('"role": "viewer"')
        bob.get_by_role("button", name="Approve").click()
        expect(bob.locator("#decision [data-outcome]")).to_have_text(APPROVED)

    return decide


def reject(reviewers):
    def decide(packet):
        alice = reviewers["alice"]
        open_packet(alice, packet)
        alice.get_by_label("Reason (optional)").fill(REASON)
        alice.get_by_role("button", name="Reject").click()
        expect(alice.locator("#decision [data-outcome]")).to_have_text(re.compile("^Rejected"))

    return decide


def assert_recorded(demo, thread_id: str, outcomes: dict) -> None:
    """The execution's steps have these outcomes, and its record no gap."""
    execution = GatekeeperClient(demo.url, demo.token, timeout=10).execution(thread_id)
    recorded = {step["index"]: step["outcome"] for step in execution["steps"]}
    assert recorded == outcomes, execution["steps"]
    assert execution["gaps"] == []


def audit_verifies() -> None:
    call_command("verify_audit", verbosity=0)  # a bad row raises CommandError


@USES_DATABASE
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.file)
def test_an_approval_with_edited_args_runs_the_grant_once_with_them(
    demo, reviewers, example, tmp_path
):
    lines, thread_id, output = run_with_reviewers(
        demo, example, approve_with_edit(reviewers), tmp_path
    )
    edited = f"RAN iam.grant {json.dumps(EDITED, sort_keys=True)}"
    assert lines == [LOOKUP, edited, "DONE"], output()
    audit_verifies()
    assert_recorded(demo, thread_id, {0: "landed", 1: "landed"})


@USES_DATABASE
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.file)
def test_a_rejection_denies_the_grant_with_the_reason_and_the_run_ends(
    demo, reviewers, example, tmp_path
):
    lines, thread_id, output = run_with_reviewers(demo, example, reject(reviewers), tmp_path)
    assert len(lines) == 3 and lines[0] == LOOKUP and lines[2] == "DONE", output()
    assert lines[1].startswith("DENIED iam.grant ") and f"rejected by alice: {REASON}" in lines[1]
    audit_verifies()
    assert_recorded(demo, thread_id, {0: "landed", 1: None})
