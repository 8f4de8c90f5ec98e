#!/usr/bin/env python3
"""An HR-onboarding agent that asks Gatekeeper before every step.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/hr_onboarding_agent.py                  # one onboarding, start to end
    python3 examples/hr_onboarding_agent.py --loop 120       # a new onboarding every 2 minutes

Each onboarding is one execution (`--thread-id`, fresh by default) of workflow `hr-onboarding`.
With the demo's policies (`python3 manage.py demo` starts this agent beside the server):

    0 lookup_employee     hr.read                allowed by policy read-only-tools
    1 create_account      directory.create_user  no policy: one approval from reviewers
    2 set_privileges      iam.grant              privileged-iam: two it-approvers, who may edit
    3 send_welcome_email  email.send             outbound-email: one reviewer; the context
                                                 is fresh for 10 minutes, then re-read

The tools are simulated: they print what a real directory, IAM system and mailer would do.
Only the client is real, and it is all the agent needs: `gatekeeper_client` (`client/` in this
repository, `pip install ./client`), standard library only.
"""

import argparse
import os
import secrets
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

try:
    from gatekeeper_client import (
        Approval,
        Blocked,
        GateDecision,
        GatekeeperClient,
        GatekeeperError,
        Skipped,
        Unauthorized,
    )
except ImportError:  # run from a checkout without installing: the client is beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
    from gatekeeper_client import (
        Approval,
        Blocked,
        GateDecision,
        GatekeeperClient,
        GatekeeperError,
        Skipped,
        Unauthorized,
    )

WORKFLOW = "hr-onboarding"
OWNER = "it-approvers"
REQUESTED_BY = "dana"  # the HR partner the agent works for: she may not approve her own requests

NEW_HIRES = [
    ("Ana Ruiz", "Engineering", "developer"),
    ("Ben Okafor", "Finance", "payroll-viewer"),
    ("Chloe Martin", "Engineering", "sre"),
    ("Dev Patel", "Support", "support-agent"),
    ("Eva Novak", "Sales", "crm-user"),
    ("Felix Wong", "Engineering", "developer"),
]

_print_lock = threading.Lock()


def say(thread_id: str, message: str) -> None:
    with _print_lock:
        print(f"{datetime.now():%H:%M:%S} [{thread_id}] {message}", flush=True)


def now() -> str:
    return datetime.now(UTC).isoformat()


class Onboarding:
    """One new hire's onboarding: four gated steps in one execution."""

    def __init__(self, client: GatekeeperClient, thread_id: str):
        self.client = client
        self.thread_id = thread_id
        name, department, role = secrets.choice(NEW_HIRES)
        first, last = name.split()
        self.username = (first[0] + last).lower()
        self.role = role
        # What started the onboarding: a ticket from HR. The employee record is read in step 0.
        self.ticket = {"ticket": f"HR-{100 + secrets.randbelow(900)}", "new_hire": name}
        self.ticket_read_at = now()
        self.employee = {
            "id": 2000 + secrets.randbelow(8000),
            "name": name,
            "department": department,
            "start": "2026-12-01",
        }
        self.employee_read_at: str | None = None

    def run(self) -> bool:
        """Run every step; False when one was blocked."""
        employee = self.employee
        say(
            self.thread_id,
            f"onboarding {employee['name']} (employee {employee['id']}) for {REQUESTED_BY}",
        )
        try:
            self.step(0, "lookup_employee", "hr.read", self.lookup, {"employee_id": employee["id"]})
            account = self.step(
                1,
                "create_account",
                "directory.create_user",
                self.create_account,
                {
                    "username": self.username,
                    "display_name": employee["name"],
                    "email": f"{self.username}@example.com",
                    "manager": REQUESTED_BY,
                },
            )
            self.step(
                2,
                "set_privileges",
                "iam.grant",
                self.grant,
                {"user": self.username, "role": self.role, "scope": "prod-eu"},
                risk={"score": 0.7, "labels": ["privilege"]},
            )
            self.step(
                3,
                "send_welcome_email",
                "email.send",
                self.send_email,
                {
                    "to": f"{self.username}@example.com",
                    "subject": f"Welcome to Example Corp, {employee['name'].split()[0]}!",
                    "body": f"Your account {account or self.username} is ready. "
                    "Day one starts at 9:00 in Building 2.",
                },
            )
        except Blocked as blocked:
            say(self.thread_id, f"stopped: {blocked.reason}")
            return False
        say(self.thread_id, "onboarding complete")
        return True

    def step(self, index, name, tool, fn, args, *, risk=None):
        result = self.client.run_step(
            fn,
            args,
            thread_id=self.thread_id,
            workflow=WORKFLOW,
            step_index=index,
            step_name=name,
            tool=tool,
            context=self.context(),
            risk=risk,
            owner=OWNER,
            on_behalf_of=REQUESTED_BY,
            refresh_context=self.read_employee_again,
            outcome_detail=lambda result: {"result": result},
            on_update=lambda update: self.report(index, name, update),
        )
        if isinstance(result, Skipped):
            say(self.thread_id, f"step {index} {name}: already done, skipped")
            return None
        return result

    def context(self) -> list[dict]:
        """What the agent knows, with when it learnt it: reviewers judge freshness by this."""
        context = [{"name": "hr_ticket", "value": self.ticket, "observed_at": self.ticket_read_at}]
        if self.employee_read_at:
            context.append(
                {
                    "name": "employee_record",
                    "value": self.employee,
                    "observed_at": self.employee_read_at,
                }
            )
        return context

    def read_employee_again(self) -> list[dict]:
        say(self.thread_id, "the approval went stale: reading the HR record again")
        self.employee_read_at = now()
        return self.context()

    def report(self, index: int, name: str, update: GateDecision | Approval) -> None:
        prefix = f"step {index} {name}:"
        if isinstance(update, GateDecision):
            if update.allowed:
                policy = update.policy.name if update.policy else "default"
                say(self.thread_id, f"{prefix} allowed by policy {policy}")
            elif update.needs_approval:
                say(self.thread_id, f"{prefix} needs approval ({update.reason})")
            return
        approval = update
        if approval.status == "pending":
            votes = f"{approval.approvals} of {approval.required_approvals} approvals"
            say(self.thread_id, f"{prefix} waiting for reviewers ({votes}): {approval.url}")
        elif approval.status == "reconciling":
            say(self.thread_id, f"{prefix} a reviewer is checking whether it already happened")
        elif approval.status == "approved":
            edited = " with edited args" if approval.edited else ""
            who = ", ".join(approval.decided_by)
            say(self.thread_id, f"{prefix} approved by {who}{edited}")

    # The tools. Real ones would call the HR system, the directory, IAM and the mailer.

    def lookup(self, employee_id):
        self.employee_read_at = now()
        say(self.thread_id, f"  -> read HR record {employee_id}: {self.employee['name']}")
        return {"rows": 1}

    def create_account(self, username, display_name, email, manager):
        account_id = f"u-{10000 + secrets.randbelow(90000)}"
        say(self.thread_id, f"  -> created directory account {username} ({account_id})")
        return account_id

    def grant(self, user, role, scope):
        say(self.thread_id, f"  -> granted role {role} on {scope} to {user}")
        return role

    def send_email(self, to, subject, body):
        say(self.thread_id, f"  -> sent {subject!r} to {to}")
        return "sent"


def fresh_thread_id() -> str:
    return f"onboard-{uuid.uuid4().hex[:8]}"


def onboard(client: GatekeeperClient, thread_id: str, stop: threading.Event) -> bool:
    try:
        return Onboarding(client, thread_id).run()
    except Unauthorized:
        say(thread_id, "the token was refused (rotated or revoked): stopping")
        stop.set()
    except GatekeeperError as error:
        say(thread_id, f"Gatekeeper error: {error}")
    return False


def loop(client: GatekeeperClient, every: float, max_running: int) -> int:
    """Start an onboarding every `every` seconds, at most `max_running` waiting at once."""
    stop = threading.Event()
    running: list[threading.Thread] = []
    while not stop.is_set():
        running = [thread for thread in running if thread.is_alive()]
        if len(running) < max_running:
            thread_id = fresh_thread_id()
            thread = threading.Thread(
                target=onboard, args=(client, thread_id, stop), name=thread_id, daemon=True
            )
            thread.start()
            running.append(thread)
        else:
            say("agent", f"{len(running)} onboardings are waiting for reviewers; none started")
        stop.wait(every)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thread-id", help="the execution's thread id (default: a fresh one)")
    parser.add_argument(
        "--loop",
        type=float,
        metavar="SECONDS",
        help="start a new onboarding every SECONDS seconds, until stopped",
    )
    parser.add_argument(
        "--max-running",
        type=int,
        default=3,
        help="with --loop: start no new onboarding while this many are running (3)",
    )
    options = parser.parse_args(argv)
    if options.loop is not None and options.thread_id:
        parser.error("--thread-id names one onboarding; --loop starts many")
    if options.loop is not None and options.loop <= 0:
        parser.error("--loop must be a positive number of seconds")
    url = os.environ.get("GATEKEEPER_URL", "").strip()
    token = os.environ.get("GATEKEEPER_TOKEN", "").strip()
    if not url or not token:
        parser.error("set GATEKEEPER_URL and GATEKEEPER_TOKEN (a service account's token)")
    client = GatekeeperClient(url, token)
    try:
        if options.loop is not None:
            say("agent", f"starting an onboarding every {options.loop:g} s against {url}")
            return loop(client, options.loop, options.max_running)
        thread_id = options.thread_id or fresh_thread_id()
        return 0 if onboard(client, thread_id, threading.Event()) else 1
    except KeyboardInterrupt:
        say("agent", "stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
