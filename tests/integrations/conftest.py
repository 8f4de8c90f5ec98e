"""Adapters against their real frameworks, offline, and a live Gatekeeper with reviewers."""

import importlib.util
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from approvals.models import PausePacket
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import packet_approve, packet_reconcile
from tests.client.conftest import (  # noqa: F401 - gk, gk_account, in_background: fixtures
    gk,
    gk_account,
    in_background,
    next_packet,
    stale_then_approve,
)
from tests.integrations.recording_tools import RecordingTools  # noqa: F401 - for the tests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STARTUP = 120  # seconds an example process may take to reach its first gate on a busy machine
CONTRACT_LINES = (
    'RAN hr.lookup {"employee_id": 7}',
    'RAN iam.grant {"role": "admin", "user": "jdoe"}',
)


@pytest.fixture
def onboarding_policies(policy):
    """hr.lookup runs; iam.grant waits for one reviewer, who may edit its args."""
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("grants", approvers="reviewers", allow_edit=True, priority=2, match={"tool": "iam.*"})


def run_example(
    name: str, live_server, token: str, *arguments: str, python=sys.executable
) -> list[str]:
    """Run examples/<name>_agent.py as an agent would (with `python`); its output lines. It
    must exit 0."""
    env = {**os.environ, "GATEKEEPER_URL": live_server.url, "GATEKEEPER_TOKEN": token}
    run = subprocess.run(
        [str(python), str(EXAMPLES / f"{name}_agent.py"), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


def ran(tool: str, args: dict) -> str:
    return f"RAN {tool} {json.dumps(args, sort_keys=True)}"


def load_example(name: str):
    """examples/<name>_agent.py as a module (the tests build on the example's agent)."""
    path = EXAMPLES / f"{name}_agent.py"
    spec = importlib.util.spec_from_file_location(f"{name}_agent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expire(packet) -> None:
    """Let the packet's deadline pass and run the expiry sweep (as Celery beat would)."""
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=2), fresh_until=past, expires_at=past
    )
    packets_expire_overdue()


def packets_of(thread_id: str) -> list:
    return list(PausePacket.objects.filter(execution__thread_id=thread_id).order_by("created_at"))


def approve_after_refresh(thread_id: str, user, *, timeout=15) -> None:
    """A reviewer approves the grant too late (back to re-review), then the refreshed one."""
    next_packet(thread_id, timeout=timeout)
    stale = stale_then_approve(thread_id, user)
    packet_approve(packet_id=next_packet(thread_id, exclude=[stale.id], timeout=80).id, user=user)


def reconcile_as_applied(thread_id: str, user, *, timeout=15) -> None:
    """A reviewer approves the grant, then, the tool's outcome unknown, approves the check and
    finds the write had happened."""
    grant = next_packet(thread_id, timeout=timeout)
    packet_approve(packet_id=grant.id, user=user)
    check = next_packet(thread_id, exclude=[grant.id], timeout=80)  # was it done?
    packet_approve(packet_id=check.id, user=user)
    next_packet(thread_id, "reconciling", timeout=80)
    packet_reconcile(packet_id=check.id, user=user, happened=True, comment="role is there")
