"""Demo data: roles, users, policies, two weeks of a team's history, and executions whose packets
sit in every branch-table state.

Everything is made through the real services (gate check, approve, reject, reconcile, refresh,
owner change, outcome, expiry sweep), so the decision record is the one a real run would leave.
Time cannot be waited for, so it is played: each scenario is a generator that yields the
moment of its next step, and _play runs the steps of all scenarios in time order with the
services' clock (django.utils.timezone.now) set to that moment. Every row and audit event then
carries the time it would have had, the record is appended in time order, and a packet that
must look stale or overdue simply is: it was made long enough ago.

Seeding is idempotent: groups, users and policies that exist are left as they are, the service
account is made once (its token is known only then), and each demo execution is skipped when its
thread already exists. The whole seed is one transaction, so a failure leaves nothing behind.
"""

import copy
import heapq
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import F
from django.utils import timezone

from approvals.errors import GatekeeperError
from approvals.gate_request import ContextInput, parse_gate_request
from approvals.models import (
    Execution,
    GateCheck,
    OutboxMessage,
    PausePacket,
    Policy,
    ServiceAccount,
)
from approvals.services.executions import (
    execution_change_owner,
    packet_refresh,
    step_record_outcome,
)
from approvals.services.expiry import packets_expire_overdue
from approvals.services.gate import gate_check
from approvals.services.policies import policies_import
from approvals.services.review import packet_approve, packet_reconcile, packet_reject
from approvals.services.service_accounts import service_account_create
from approvals.services.transactions import seeding

DEMO_PASSWORD = "gatekeeper-demo"
SERVICE_ACCOUNT = "demo-agent"
ACTOR = "system"

GROUPS = ("reviewers", "it-approvers", "it-leads", "finance-approvers", "auditors")
AUDITOR_PERMISSION = ("audit", "view_auditevent")

# username -> (groups, what the banner says about them)
USERS = {
    "admin": ((), "superuser: admin site, sees and may act on everything"),
    "alice": (("it-approvers", "reviewers"), "reviewer: IT approvals and the default queue"),
    "bob": (("it-approvers", "reviewers"), "reviewer: IT approvals and the default queue"),
    "carol": (("finance-approvers",), "finance approver: large payouts"),
    "dave": (("it-leads",), "IT lead: escalations, took over an offboarding"),
    "erin": (("auditors",), "auditor: reads every execution's record"),
}

POLICIES = [
    {
        "name": "block-destructive-db",
        "priority": 5,
        "match": {"tool": "db.drop*"},
        "effect": "block",
    },
    {
        "name": "privileged-iam",
        "priority": 10,
        "match": {"workflow": "hr-*", "tool": "iam.*"},
        "effect": "require_approval",
        "approvers": "it-approvers",
        "escalate_to": "it-leads",
        "required_approvals": 2,
        "allow_edit": True,
    },
    {
        "name": "large-payments",
        "priority": 20,
        "match": {
            "tool": "payments.*",
            "conditions": [{"path": "amount", "op": "gt", "value": 10000}],
        },
        "effect": "require_approval",
        "approvers": "finance-approvers",
        "expires_after_seconds": 8 * 3600,
    },
    # A stricter rule being watched before it decides: admin's shadow report shows the large
    # payouts it would have blocked.
    {
        "name": "block-payments-over-40k",
        "priority": 15,
        "mode": "shadow",
        "match": {
            "tool": "payments.*",
            "conditions": [{"path": "amount", "op": "gt", "value": 40000}],
        },
        "effect": "block",
    },
    {
        "name": "outbound-email",
        "priority": 30,
        "match": {"tool": "email.send"},
        "effect": "require_approval",
        "approvers": "reviewers",
        "fresh_for_seconds": 600,
        "expires_after_seconds": 4 * 3600,
    },
    {"name": "read-only-tools", "priority": 50, "match": {"tool": "*.read"}, "effect": "allow"},
    {"name": "search-tools", "priority": 51, "match": {"tool": "search.*"}, "effect": "allow"},
    # The integration examples (examples/<module>_agent.py) look an employee up before the grant.
    {"name": "hr-lookups", "priority": 52, "match": {"tool": "hr.lookup"}, "effect": "allow"},
]


class DemoSeedFailed(Exception):
    """The demo data could not be made; nothing was written."""


@dataclass
class SeedResult:
    users_created: list[str] = field(default_factory=list)
    users_existing: list[str] = field(default_factory=list)
    policies_created: list[str] = field(default_factory=list)
    policies_existing: list[str] = field(default_factory=list)
    executions_created: list[str] = field(default_factory=list)
    executions_existing: list[str] = field(default_factory=list)
    service_account_created: bool = False
    # Known only when the account was made by this run: it is stored hashed.
    token: str | None = None
    expired: int = 0


def demo_seed() -> SeedResult:
    """Create the demo roles, users, service account, policies and executions (idempotent)."""
    result = SeedResult()
    with seeding():
        groups = _seed_groups()
        _seed_users(groups, result)
        account = _seed_service_account(result)
        agent = _Agent(account)
        if not Execution.objects.filter(service_account=account).exists():
            # A new demo: its policies were in place before its history began.
            agent.now = agent.before_present(days=HISTORY_DAYS + 1)
        with _services_clock(agent):
            _seed_policies(result)
        scenarios = [*history_scenarios(agent.present), *SCENARIOS]
        _play(agent, scenarios, result)
        # What the periodic sweeper does now: whatever is overdue at this moment expires.
        result.expired = agent.expired + packets_expire_overdue()
        # Their notifications went out when the history happened, not now.
        OutboxMessage.objects.filter(
            status=OutboxMessage.Status.PENDING,
            created_at__lt=agent.present - HISTORY_DELIVERED_AFTER,
            packet__execution__service_account=account,
            packet__execution__thread_id__in=result.executions_created,
        ).update(status=OutboxMessage.Status.SENT, attempts=1, sent_at=F("created_at"))
    return result


# Steps played (a scenario's next step, with the moment it happens at), for _play's queue.
Steps = Generator[datetime, None, None]
Scenario = Callable[["_Agent"], Steps]
# beat runs the expiry sweep every 15 s.
EXPIRY_SWEEP_DELAY = timedelta(seconds=15)
# Older demo notifications count as delivered back then; newer ones wait for the worker.
HISTORY_DELIVERED_AFTER = timedelta(minutes=15)


def _play(agent: "_Agent", scenarios: Sequence[tuple[str, Scenario]], result: SeedResult) -> None:
    """Run the steps of every scenario not made yet in time order, each at its own moment.

    A scenario yields a moment before each step (its first statement is such a yield); the
    queue always resumes the scenario whose next moment is earliest, so the decision record is
    appended in the order its events happened. No moment passes the present.
    """
    queue = []
    for order, (thread_id, scenario) in enumerate(scenarios):
        if Execution.objects.filter(service_account=agent.account, thread_id=thread_id).exists():
            result.executions_existing.append(thread_id)
            continue
        steps = scenario(agent)
        queue.append((next(steps), order, thread_id, steps))
    heapq.heapify(queue)
    with _services_clock(agent):
        while queue:
            moment, order, thread_id, steps = heapq.heappop(queue)
            agent.now = min(moment, agent.present)
            try:
                moment = next(steps)
            except StopIteration:
                result.executions_created.append(thread_id)
                continue
            except (GatekeeperError, DemoSeedFailed) as error:
                # Most likely a demo user or policy that was changed before this first run.
                raise DemoSeedFailed(
                    f"demo execution {thread_id} could not be made: {error}"
                ) from error
            heapq.heappush(queue, (moment, order, thread_id, steps))


@contextmanager
def _services_clock(agent: "_Agent") -> Iterator[None]:
    """Every service reads the time through timezone.now: let it read the scenario's moment."""
    real_now = timezone.now
    timezone.now = lambda: agent.now
    try:
        yield
    finally:
        timezone.now = real_now


def _seed_groups() -> dict[str, Group]:
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
    app_label, codename = AUDITOR_PERMISSION
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    groups["auditors"].permissions.add(permission)
    return groups


def _seed_users(groups: dict[str, Group], result: SeedResult) -> None:
    User = get_user_model()
    for username, (group_names, _role) in USERS.items():
        user = User.objects.filter(username=username).first()
        if user is not None:
            # Left as it is: the password or roles may have been changed on purpose.
            result.users_existing.append(username)
            continue
        email = f"{username}@example.com"
        if username == "admin":
            user = User.objects.create_superuser(username, email, DEMO_PASSWORD)
        else:
            user = User.objects.create_user(username, email, DEMO_PASSWORD)
        user.groups.add(*(groups[name] for name in group_names))
        result.users_created.append(username)


def _seed_service_account(result: SeedResult) -> ServiceAccount:
    account = ServiceAccount.objects.filter(name=SERVICE_ACCOUNT).first()
    if account is None:
        account, result.token = service_account_create(name=SERVICE_ACCOUNT)
        result.service_account_created = True
    return account


def _seed_policies(result: SeedResult) -> None:
    # A demo policy an admin has edited is kept: re-running the demo must not undo their work.
    existing = set(
        Policy.objects.filter(name__in=[p["name"] for p in POLICIES]).values_list("name", flat=True)
    )
    missing = [document for document in POLICIES if document["name"] not in existing]
    if missing:
        policies_import(documents=missing, actor=ACTOR)
    result.policies_created = [document["name"] for document in missing]
    result.policies_existing = sorted(existing)


class _Agent:
    """The demo orchestrator: asks the gate, reports outcomes, refreshes context."""

    def __init__(self, account: ServiceAccount):
        self.account = account
        # The real time of the seed: no step happens after it.
        self.present = timezone.now()
        # The moment of the step being played (_play sets it).
        self.now = self.present
        self.expired = 0
        User = get_user_model()
        self.users = {name: User.objects.get(username=name) for name in USERS}

    def before_present(self, **delta) -> datetime:
        return self.present - timedelta(**delta)

    def later(self, **delta) -> datetime:
        """A moment this long after the current step."""
        return self.now + timedelta(**delta)

    def ago(self, **delta) -> str:
        return (self.now - timedelta(**delta)).isoformat()

    def sweep(self) -> None:
        """What beat's expiry job does at this moment."""
        self.expired += packets_expire_overdue()

    def gate(
        self,
        thread_id: str,
        workflow: str,
        step: int,
        name: str,
        tool: str,
        args: dict,
        *,
        context: Sequence[dict] = (),
        side_effect: str = "not_started",
        owner: str = "",
        parent: str | None = None,
        on_behalf_of: str = "",
        risk: dict | None = None,
        key: str = "",
    ) -> dict:
        execution = {"thread_id": thread_id, "workflow": workflow}
        if owner:
            execution["owner"] = owner
        if parent:
            execution["parent_thread_id"] = parent
        if on_behalf_of:
            execution["on_behalf_of"] = on_behalf_of
        body = {
            "idempotency_key": key or f"{thread_id}:{step}",
            "execution": execution,
            "step": {"index": step, "name": name},
            "action": {"tool": tool, "args": args, "side_effect": side_effect},
            "context": list(context),
        }
        if risk:
            body["risk"] = risk
        request = parse_gate_request(copy.deepcopy(body))
        response = gate_check(service_account=self.account, request=request, body=body)
        # The gate stamps its check, and a new execution, with the database's clock.
        GateCheck.objects.filter(
            service_account=self.account, idempotency_key=body["idempotency_key"]
        ).update(created_at=self.now)
        Execution.objects.filter(
            service_account=self.account, thread_id=thread_id, created_at__gt=self.now
        ).update(created_at=self.now)
        return response

    def packet(self, response: dict) -> PausePacket:
        """The packet a gate answer made; a clear error if a changed policy decided otherwise."""
        if response["approval"] is None:
            raise DemoSeedFailed(
                f"the demo expected an approval but the gate answered {response['decision']} "
                f"({response['reason']}); was a demo policy changed?"
            )
        return PausePacket.objects.get(id=response["approval"]["id"])

    def outcome(self, thread_id: str, step: int, side_effect: str, **detail) -> None:
        step_record_outcome(
            service_account=self.account,
            thread_id=thread_id,
            step_index=step,
            side_effect=side_effect,
            detail=detail,
        )

    def approve(self, packet: PausePacket, username: str, comment: str = "", **kwargs):
        return packet_approve(
            packet_id=packet.id, user=self.users[username], comment=comment, **kwargs
        )

    def reject(self, packet: PausePacket, username: str, comment: str):
        return packet_reject(packet_id=packet.id, user=self.users[username], comment=comment)

    def reconcile(self, packet: PausePacket, username: str, *, happened: bool, comment: str):
        return packet_reconcile(
            packet_id=packet.id, user=self.users[username], happened=happened, comment=comment
        )

    def refresh(self, packet: PausePacket, context: list[dict]) -> PausePacket:
        return packet_refresh(
            service_account=self.account,
            packet_id=packet.id,
            context=tuple(ContextInput(**item) for item in context),
        )

    def change_owner(self, thread_id: str, owner: str, reason: str) -> None:
        execution_change_owner(
            service_account=self.account, thread_id=thread_id, owner=owner, reason=reason
        )


# The executions of today, each showing one state of the branch table.
SCENARIOS: list[tuple[str, Scenario]] = []


def _scenario(thread_id: str):
    def register(function):
        SCENARIOS.append((thread_id, function))
        return function

    return register


def _employee(agent: _Agent, number: int, name: str, **age) -> dict:
    return {
        "name": "employee_record",
        "value": {"id": number, "name": name, "department": "Engineering", "start": "2026-12-01"},
        "observed_at": agent.ago(**(age or {"minutes": 6})),
    }


def _onboarding_start(agent: _Agent, thread: str, number: int) -> Steps:
    """Step 0 of an onboarding: read the HR record (a read-only tool: allowed) and report it."""
    agent.gate(
        thread,
        "hr-onboarding",
        0,
        "lookup_employee",
        "hr.read",
        {"employee_id": number},
        owner="it-approvers",
        on_behalf_of="dana",
    )
    yield agent.later(seconds=2)
    agent.outcome(thread, 0, "landed", rows=1)


def _create_account(agent: _Agent, thread: str, number: int, name: str, username: str) -> dict:
    return agent.gate(
        thread,
        "hr-onboarding",
        1,
        "create_account",
        "directory.create_user",
        {
            "username": username,
            "display_name": name,
            "email": f"{username}@example.com",
            "manager": "dana",
        },
        context=[_employee(agent, number, name)],
        on_behalf_of="dana",
    )


def _grant(agent: _Agent, thread: str, number: int, name: str, args: dict, score: float) -> dict:
    return agent.gate(
        thread,
        "hr-onboarding",
        2,
        "set_privileges",
        "iam.grant",
        args,
        context=[_employee(agent, number, name)],
        on_behalf_of="dana",
        risk={"score": score, "labels": ["privilege"]},
    )


def _account_made(
    agent: _Agent, thread: str, number: int, hire: tuple[str, str], reviewer: str, **delay
) -> Steps:
    """Steps 0 and 1 of an onboarding: the HR record read; the account asked for, approved after
    `delay`, and made."""
    name, username = hire
    yield from _onboarding_start(agent, thread, number)
    yield agent.later(minutes=1)
    created = agent.packet(_create_account(agent, thread, number, name, username))
    yield agent.later(**delay)
    agent.approve(created, reviewer, "Matches the HR record.")
    yield agent.later(minutes=1)
    agent.outcome(thread, 1, "landed", account_id=f"u-{87370 + number}")


@_scenario("onboard-1042")
def _onboarding_waiting_for_second_approval(agent: _Agent) -> Steps:
    thread = "onboard-1042"
    yield agent.before_present(minutes=50)
    yield from _account_made(agent, thread, 1042, ("Jane Doe", "jdoe"), "alice", minutes=14)
    yield agent.later(minutes=2)
    privileges = agent.packet(
        agent.gate(
            thread,
            "hr-onboarding",
            2,
            "set_privileges",
            "iam.grant",
            {"user": "jdoe", "role": "admin", "scope": "prod-eu"},
            context=[
                _employee(agent, 1042, "Jane Doe"),
                {
                    "name": "role_request",
                    "value": {"ticket": "IT-5521", "role": "admin"},
                    "observed_at": agent.ago(minutes=4),
                },
            ],
            on_behalf_of="dana",
            risk={"score": 0.8, "labels": ["privilege"]},
        )
    )
    yield agent.later(minutes=11)
    # Quorum is 2 for privileged IAM: one vote in, waiting for a second reviewer.
    agent.approve(privileges, "alice", "Role approved by the team lead in IT-5521.")


@_scenario("onboard-1042.laptop")
def _nested_sub_agent(agent: _Agent) -> Steps:
    thread = "onboard-1042.laptop"
    yield agent.before_present(minutes=40)
    agent.gate(
        thread,
        "it-provisioning",
        0,
        "check_stock",
        "inventory.read",
        {"sku": "LAPTOP-X1"},
        parent="onboard-1042",
        owner="reviewers",
    )
    yield agent.later(seconds=3)
    agent.outcome(thread, 0, "landed", in_stock=14)
    yield agent.later(minutes=1)
    order = agent.packet(
        agent.gate(
            thread,
            "it-provisioning",
            1,
            "order_laptop",
            "procurement.order",
            {"sku": "LAPTOP-X1", "ship_to": "jdoe", "cost_centre": "ENG-4"},
            context=[
                {
                    "name": "stock",
                    "value": {"sku": "LAPTOP-X1", "available": 14},
                    "observed_at": agent.ago(minutes=2),
                }
            ],
            parent="onboard-1042",
        )
    )
    yield agent.later(minutes=9)
    agent.approve(order, "bob", "Standard hardware.")
    yield agent.later(minutes=2)
    agent.outcome(thread, 1, "landed", order_id="PO-77120")


@_scenario("onboard-1043")
def _onboarding_edited_approved_then_email(agent: _Agent) -> Steps:
    thread = "onboard-1043"
    yield agent.before_present(minutes=80)
    yield from _account_made(agent, thread, 1043, ("Sam Lee", "slee"), "bob", minutes=30)
    yield agent.later(minutes=1)
    grant = agent.packet(
        _grant(agent, thread, 1043, "Sam Lee", {"user": "slee", "role": "payroll-admin"}, 0.6)
    )
    yield agent.later(minutes=20)
    # The policy allows edits: alice narrows the role, which restarts the quorum on the new args.
    agent.approve(
        grant,
        "alice",
        "Viewer is enough for week one.",
        edited_args={"user": "slee", "role": "payroll-viewer"},
    )
    yield agent.later(minutes=15)
    agent.approve(grant, "bob", "Agreed, viewer only.")
    yield agent.later(minutes=1)
    agent.outcome(thread, 2, "landed", role="payroll-viewer")
    yield agent.before_present(minutes=5)
    agent.gate(
        thread,
        "hr-onboarding",
        3,
        "send_welcome_email",
        "email.send",
        {
            "to": "slee@example.com",
            "subject": "Welcome to Example Corp, Sam!",
            "body": "Your account is ready. Your first day starts at 9:00 in Building 2.",
        },
        context=[_employee(agent, 1043, "Sam Lee", minutes=1)],
        on_behalf_of="dana",
    )


@_scenario("onboard-1044")
def _onboarding_stale(agent: _Agent) -> Steps:
    thread = "onboard-1044"
    yield agent.before_present(hours=2, minutes=10)
    yield from _onboarding_start(agent, thread, 1044)
    yield agent.later(minutes=5)
    # Asked two hours ago with one hour of freshness: an approval now would go to re-review.
    agent.gate(
        thread,
        "hr-onboarding",
        1,
        "create_account",
        "directory.create_user",
        {"username": "praman", "display_name": "Priya Raman", "manager": "dana"},
        context=[_employee(agent, 1044, "Priya Raman", minutes=5)],
        on_behalf_of="dana",
    )


@_scenario("onboard-1045")
def _onboarding_rejected(agent: _Agent) -> Steps:
    thread = "onboard-1045"
    yield agent.before_present(hours=5)
    yield from _account_made(agent, thread, 1045, ("Tom Berg", "tberg"), "alice", minutes=40)
    yield agent.later(minutes=1)
    grant = agent.packet(
        _grant(agent, thread, 1045, "Tom Berg", {"user": "tberg", "role": "domain-admin"}, 0.95)
    )
    yield agent.later(minutes=25)
    agent.reject(grant, "bob", "Domain admin is not part of any onboarding template.")


@_scenario("offboard-311")
def _offboarding_owner_changed(agent: _Agent) -> Steps:
    thread = "offboard-311"
    yield agent.before_present(hours=4)
    agent.gate(
        thread,
        "hr-offboarding",
        0,
        "lookup_employee",
        "hr.read",
        {"employee_id": 311},
        owner="it-approvers",
    )
    yield agent.later(seconds=2)
    agent.outcome(thread, 0, "landed", rows=1)
    yield agent.later(minutes=1)
    agent.packet(
        agent.gate(
            thread,
            "hr-offboarding",
            1,
            "revoke_access",
            "iam.revoke_all",
            {"user": "mkent", "keep_mailbox_days": 30},
            context=[
                {
                    "name": "termination",
                    "value": {"employee_id": 311, "effective": "today"},
                    "observed_at": agent.ago(minutes=12),
                }
            ],
            risk={"score": 0.7, "labels": ["privilege"]},
        )
    )
    yield agent.later(minutes=30)
    # The orchestrator hands the execution to IT leads: the open branch is terminated (row 2).
    agent.change_owner(thread, "it-leads", "Contested departure: IT leads handle it by hand.")


def _payout(thread: str, amount: int, vendor: str) -> dict:
    return {
        "vendor": vendor,
        "amount": amount,
        "currency": "EUR",
        "iban": "DE89 3704 0044 0532 0130 00",
        "reference": f"INV-{thread.rsplit('-', 1)[-1]}",
    }


def _payout_start(agent: _Agent, thread: str) -> Steps:
    agent.gate(
        thread,
        "payments",
        0,
        "load_invoice",
        "invoices.read",
        {"invoice": f"INV-{thread.rsplit('-', 1)[-1]}"},
        owner="finance-approvers",
        on_behalf_of="frank",
    )
    yield agent.later(seconds=2)
    agent.outcome(thread, 0, "landed", rows=1)


def _invoice(agent: _Agent, amount: int, vendor: str, **age) -> list[dict]:
    return [
        {
            "name": "invoice",
            "value": {"vendor": vendor, "amount": amount, "due": "2026-12-15"},
            "observed_at": agent.ago(**(age or {"minutes": 3})),
        }
    ]


def _gate_payout(agent: _Agent, thread: str, amount: int, vendor: str, **kwargs) -> dict:
    return agent.gate(
        thread,
        "payments",
        1,
        "vendor_payout",
        "payments.transfer",
        _payout(thread, amount, vendor),
        on_behalf_of="frank",
        **kwargs,
    )


@_scenario("payout-2291")
def _payout_pending(agent: _Agent) -> Steps:
    thread = "payout-2291"
    yield agent.before_present(hours=2)
    yield from _payout_start(agent, thread)
    yield agent.later(minutes=1)
    _gate_payout(agent, thread, 18500, "Acme Corp", context=_invoice(agent, 18500, "Acme Corp"))


@_scenario("payout-2288")
def _payout_expired(agent: _Agent) -> Steps:
    thread = "payout-2288"
    yield agent.before_present(hours=9, minutes=30)
    yield from _payout_start(agent, thread)
    yield agent.later(minutes=2)
    packet = agent.packet(
        _gate_payout(
            agent, thread, 25000, "Globex GmbH", context=_invoice(agent, 25000, "Globex GmbH")
        )
    )
    # Nobody decided within the 8 hours the policy gives: beat's next sweep expires it.
    yield packet.expires_at + EXPIRY_SWEEP_DELAY
    agent.sweep()


def _payout_unsure(
    agent: _Agent, thread: str, amount: int, vendor: str
) -> Generator[datetime, None, PausePacket]:
    """Approved, run, outcome unknown (bank timeout), gated again: a packet to reconcile."""
    yield from _payout_start(agent, thread)
    yield agent.later(minutes=1)
    first = agent.packet(
        _gate_payout(agent, thread, amount, vendor, context=_invoice(agent, amount, vendor))
    )
    yield agent.later(minutes=35)
    agent.approve(first, "carol", "Invoice checked against the PO.")
    yield agent.later(seconds=30)
    agent.outcome(thread, 1, "indeterminate", error="bank API timed out after 30 s")
    yield agent.later(minutes=3)
    retry = _gate_payout(
        agent,
        thread,
        amount,
        vendor,
        context=_invoice(agent, amount, vendor, minutes=1),
        side_effect="indeterminate",
        key=f"{thread}:1:retry",
    )
    packet = agent.packet(retry)
    yield agent.later(minutes=20)
    # The write may have happened: approving sends it to the reconcile branch (row 3).
    agent.approve(packet, "carol", "Checking with the bank before anything is resent.")
    return packet


@_scenario("payout-2290")
def _payout_reconciling(agent: _Agent) -> Steps:
    yield agent.before_present(hours=3)
    yield from _payout_unsure(agent, "payout-2290", 12000, "Initech Ltd")


@_scenario("payout-2289")
def _payout_applied(agent: _Agent) -> Steps:
    yield agent.before_present(hours=6)
    packet = yield from _payout_unsure(agent, "payout-2289", 14200, "Umbrella Supplies")
    yield agent.later(minutes=35)
    agent.reconcile(
        packet, "carol", happened=True, comment="The bank statement shows the transfer went out."
    )


def _ticket(agent: _Agent, number: int, text: str, **age) -> dict:
    return {
        "name": "ticket",
        "value": {"id": number, "customer": "kim@customer.example", "last_message": text},
        "observed_at": agent.ago(**(age or {"minutes": 2})),
    }


def _support_reply(agent: _Agent, thread: str, number: int, body: str, **kwargs) -> dict:
    return agent.gate(
        thread,
        "support",
        1,
        "send_reply",
        "email.send",
        {"to": "kim@customer.example", "subject": f"Re: ticket #{number}", "body": body},
        **kwargs,
    )


def _support_start(agent: _Agent, thread: str, number: int) -> Steps:
    agent.gate(thread, "support", 0, "find_ticket", "search.tickets", {"query": f"#{number}"})
    yield agent.later(seconds=1)
    agent.outcome(thread, 0, "landed", hits=1)
    yield agent.later(minutes=1)


@_scenario("support-7781")
def _support_pending_with_markup(agent: _Agent) -> Steps:
    thread = "support-7781"
    yield agent.before_present(minutes=8)
    yield from _support_start(agent, thread, 7781)
    # The customer's text is quoted back: agent-provided markup must show as text, never run.
    quoted = "Hello <script>alert(1)</script>, my invoice is wrong"
    _support_reply(
        agent,
        thread,
        7781,
        f'Hi Kim,\n\nYou wrote: "{quoted}".\nWe corrected it and refunded EUR 40.\n\nSupport',
        context=[_ticket(agent, 7781, quoted)],
    )


@_scenario("support-7779")
def _support_re_review(agent: _Agent) -> Steps:
    thread = "support-7779"
    yield agent.before_present(hours=1)
    yield from _support_start(agent, thread, 7779)
    packet = agent.packet(
        _support_reply(
            agent,
            thread,
            7779,
            "Hi Kim, your replacement ships today.",
            context=[_ticket(agent, 7779, "Where is my order?", minutes=5)],
        )
    )
    yield agent.later(minutes=35)
    # Ten minutes of freshness are long gone: approving sends it back for fresh context (row 4).
    agent.approve(packet, "alice")


@_scenario("support-7780")
def _support_superseded(agent: _Agent) -> Steps:
    thread = "support-7780"
    yield agent.before_present(hours=1, minutes=10)
    yield from _support_start(agent, thread, 7780)
    packet = agent.packet(
        _support_reply(
            agent,
            thread,
            7780,
            "Hi Kim, your refund is on its way.",
            context=[_ticket(agent, 7780, "Refund please", minutes=5)],
        )
    )
    yield agent.later(minutes=45)
    agent.approve(packet, "bob")
    yield agent.later(minutes=3)
    # The orchestrator re-reads the ticket: a new pending packet replaces the stale one.
    agent.refresh(packet, [_ticket(agent, 7780, "Refund please (second reminder)", minutes=0)])


@_scenario("support-7782")
def _support_side_effect_unknown(agent: _Agent) -> Steps:
    thread = "support-7782"
    yield agent.before_present(minutes=30)
    yield from _support_start(agent, thread, 7782)
    body = "Hi Kim, we reset your password; check your inbox."
    first = agent.packet(
        _support_reply(agent, thread, 7782, body, context=[_ticket(agent, 7782, "Locked out")])
    )
    yield agent.later(minutes=6)
    agent.approve(first, "bob")
    yield agent.later(minutes=1)
    agent.outcome(thread, 1, "indeterminate", error="SMTP connection dropped after DATA")
    yield agent.later(minutes=2)
    # Gated again as indeterminate: pending, and an approval will ask to reconcile first.
    _support_reply(
        agent,
        thread,
        7782,
        body,
        context=[_ticket(agent, 7782, "Locked out", minutes=1)],
        side_effect="indeterminate",
        key=f"{thread}:1:retry",
    )


@_scenario("maint-88")
def _maintenance_blocked_and_gap(agent: _Agent) -> Steps:
    thread = "maint-88"
    yield agent.before_present(hours=7)
    agent.gate(
        thread,
        "db-maintenance",
        0,
        "table_sizes",
        "db.read",
        {"schema": "staging"},
        owner="it-leads",
    )
    yield agent.later(seconds=5)
    agent.outcome(thread, 0, "landed", tables=42)
    yield agent.later(minutes=1)
    agent.gate(
        thread,
        "db-maintenance",
        1,
        "drop_old_tables",
        "db.drop_table",
        {"schema": "staging", "tables": ["events_2019", "events_2020"]},
    )
    yield agent.later(minutes=5)
    # Never gated: the timeline flags this outcome as an ungated step.
    agent.outcome(thread, 2, "landed", command="VACUUM ANALYZE staging.events")


# --- Two weeks of a team's history, before today's executions ---

HISTORY_DAYS = 14
WORKDAY_START = time(9, 0)
WORKDAY_MINUTES = 8 * 60
NEW_HIRES = (
    ("Ana Costa", "acosta"),
    ("Ben Okafor", "bokafor"),
    ("Chen Wei", "cwei"),
    ("Dara Novak", "dnovak"),
    ("Eli Haddad", "ehaddad"),
    ("Fay Moreau", "fmoreau"),
    ("Gus Lindqvist", "glindqvist"),
)
VENDORS = ("Acme Corp", "Globex GmbH", "Initech Ltd", "Umbrella Supplies", "Hooli BV")
TICKETS = (
    ("Where is my order?", "Hi Kim, your order left our warehouse this morning."),
    ("Invoice shows the wrong VAT", "Hi Kim, we corrected the VAT and sent a new invoice."),
    ("Cannot log in", "Hi Kim, we reset your password; check your inbox."),
    ("Please cancel my plan", "Hi Kim, your plan ends at the close of this billing period."),
)


def history_scenarios(present: datetime) -> list[tuple[str, Scenario]]:
    """The working days of the two weeks before `present`'s day, a few executions each.

    Thread ids are numbered from the oldest day, so a later run finds them all made.
    Each thread's story comes from a random generator seeded with its id: every seed tells it
    the same way.
    """
    today = timezone.localdate(present)
    days = [today - timedelta(days=back) for back in range(HISTORY_DAYS, 0, -1)]
    scenarios = []
    for index, day in enumerate(day for day in days if day.weekday() < 5):
        scenarios.append(_history_thread(f"onboard-{1001 + index}", day, _onboarding))
        scenarios.append(_history_thread(f"payout-{2201 + index}", day, _payout_history))
        for slot in range(2):
            thread = f"support-{7701 + 2 * index + slot}"
            scenarios.append(_history_thread(thread, day, _support_history))
    return scenarios


def _history_thread(thread: str, day, story) -> tuple[str, Scenario]:
    number = int(thread.rsplit("-", 1)[1])

    def scenario(agent: _Agent) -> Steps:
        rng = random.Random(thread)  # noqa: S311 (a demo's story, not a secret)
        start = timezone.make_aware(datetime.combine(day, WORKDAY_START))
        yield start + timedelta(minutes=rng.randrange(WORKDAY_MINUTES - 30))
        yield from story(agent, thread, number, rng)

    return thread, scenario


def _minutes(rng: random.Random, quick: tuple[int, int], slow: tuple[int, int], p: float):
    """A reviewer's delay: mostly `quick`, sometimes (probability p) `slow`, in minutes."""
    low, high = slow if rng.random() < p else quick
    return {"minutes": rng.randint(low, high), "seconds": rng.randrange(60)}


def _decide(
    agent: _Agent,
    packet: PausePacket,
    approvers: Sequence[str],
    context: Callable[[], list[dict]],
    rng: random.Random,
    comment: str = "",
) -> Generator[datetime, None, PausePacket]:
    """The approvers approve in turn, a reviewer's delay apart (the caller waited for the first).

    When the context went stale meanwhile (re-review), the agent refreshes it and they approve
    the new packet at once. Returns the packet approved last (a refresh replaces it).
    """
    for index, username in enumerate(approvers):
        if index:
            yield agent.later(**_minutes(rng, (2, 30), (45, 90), 0.15))
        agent.approve(packet, username, comment)
        packet.refresh_from_db()
        if packet.status == PausePacket.Status.RE_REVIEW:
            yield agent.later(minutes=4)
            packet = agent.refresh(packet, context())
            for username in approvers:
                yield agent.later(minutes=3)
                agent.approve(packet, username, "Re-checked with the fresh context.")
            break
    return packet


def _onboarding(agent: _Agent, thread: str, number: int, rng: random.Random) -> Steps:
    name, username = rng.choice(NEW_HIRES)
    reviewers = rng.sample(["alice", "bob"], 2)
    yield from _onboarding_start(agent, thread, number)
    yield agent.later(minutes=rng.randint(1, 4))
    created = agent.packet(_create_account(agent, thread, number, name, username))
    yield agent.later(**_minutes(rng, (4, 50), (70, 180), 0.15))
    employee = lambda: [_employee(agent, number, name)]  # noqa: E731
    yield from _decide(agent, created, reviewers[:1], employee, rng)
    yield agent.later(minutes=1)
    agent.outcome(thread, 1, "landed", account_id=f"u-{87370 + number}")
    yield agent.later(minutes=rng.randint(1, 5))
    role = rng.choice(["developer", "developer", "support-agent", "admin"])
    grant = agent.packet(_grant(agent, thread, number, name, {"user": username, "role": role}, 0.5))
    yield agent.later(**_minutes(rng, (5, 40), (60, 150), 0.1))
    if role == "admin":
        agent.reject(grant, reviewers[1], "Admin is not part of any onboarding template.")
        return
    yield from _decide(agent, grant, reviewers, employee, rng, "Matches the role template.")
    yield agent.later(minutes=1)
    agent.outcome(thread, 2, "landed", role=role)


def _payout_history(agent: _Agent, thread: str, number: int, rng: random.Random) -> Steps:
    vendor = rng.choice(VENDORS)
    amount = rng.randrange(10_500, 48_000, 100)
    if number == 2204:  # once: the bank timed out, and a human checked before a resend
        packet = yield from _payout_unsure(agent, thread, amount, vendor)
        yield agent.later(minutes=rng.randint(20, 70))
        agent.reconcile(packet, "carol", happened=False, comment="No transfer on the statement.")
        yield agent.later(minutes=2)
        # Pending again: the transfer may now be sent, once approved.
        invoice = lambda: _invoice(agent, amount, vendor, minutes=1)  # noqa: E731
        yield from _decide(agent, packet, ["carol"], invoice, rng, "Resend it.")
        yield agent.later(minutes=1)
        agent.outcome(thread, 1, "landed", transfer_id=f"TR-{number}")
        return
    yield from _payout_start(agent, thread)
    yield agent.later(minutes=rng.randint(1, 3))
    packet = agent.packet(
        _gate_payout(agent, thread, amount, vendor, context=_invoice(agent, amount, vendor))
    )
    if number % 4 == 2:  # now and then nobody gets to it within the policy's 8 hours
        yield packet.expires_at + EXPIRY_SWEEP_DELAY
        agent.sweep()
        return
    yield agent.later(**_minutes(rng, (8, 55), (65, 200), 0.2))
    invoice = lambda: _invoice(agent, amount, vendor, minutes=1)  # noqa: E731
    yield from _decide(agent, packet, ["carol"], invoice, rng, "Invoice checked against the PO.")
    yield agent.later(minutes=1)
    agent.outcome(thread, 1, "landed", transfer_id=f"TR-{number}")


def _support_history(agent: _Agent, thread: str, number: int, rng: random.Random) -> Steps:
    question, answer = rng.choice(TICKETS)
    yield from _support_start(agent, thread, number)
    packet = agent.packet(
        _support_reply(agent, thread, number, answer, context=[_ticket(agent, number, question)])
    )
    yield agent.later(**_minutes(rng, (1, 7), (12, 35), 0.15))
    reviewer = rng.choice(["alice", "bob"])
    if rng.random() < 0.12:
        agent.reject(packet, reviewer, "Too curt for this customer: add an apology.")
        return
    ticket = lambda: [_ticket(agent, number, question, minutes=0)]  # noqa: E731
    yield from _decide(agent, packet, [reviewer], ticket, rng)
    yield agent.later(seconds=20)
    agent.outcome(thread, 1, "landed", message_id=f"<{number}@support.example>")
