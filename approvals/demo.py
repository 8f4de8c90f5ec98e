"""Demo data: roles, users, policies and executions whose packets sit in every branch-table state.

Everything is made through the real services (gate check, approve, reject, reconcile, refresh,
owner change, outcome, expiry sweep), so the decision record is the one a real run would leave.

One deliberate shortcut: time cannot be waited for, so a packet that must look stale or overdue
is moved back in time after it is made (`_backdate`: created_at, fresh_until and expires_at
shifted together by a queryset update). The rows are then what an older packet looks like; the
`packet.created` audit event keeps the deadlines the packet was first given, and every later
event (re-review, expiry) is real and says why.

Seeding is idempotent: groups, users and policies that exist are left as they are, the service
account is made once (its token is known only then), and each demo execution is skipped when its
thread already exists. The whole seed is one transaction, so a failure leaves nothing behind.
"""

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from approvals.errors import GatekeeperError
from approvals.gate_request import ContextInput, parse_gate_request
from approvals.models import Execution, PausePacket, Policy, ServiceAccount
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
    with transaction.atomic():
        groups = _seed_groups()
        _seed_users(groups, result)
        account = _seed_service_account(result)
        _seed_policies(result)
        agent = _Agent(account)
        for thread_id, scenario in SCENARIOS:
            if Execution.objects.filter(service_account=account, thread_id=thread_id).exists():
                result.executions_existing.append(thread_id)
                continue
            try:
                scenario(agent)
            except (GatekeeperError, DemoSeedFailed) as error:
                # Most likely a demo user or policy that was changed before this first run.
                raise DemoSeedFailed(
                    f"demo execution {thread_id} could not be made: {error}"
                ) from error
            result.executions_created.append(thread_id)
        # What the periodic sweeper would do next: the overdue payout above becomes expired.
        result.expired = packets_expire_overdue()
    return result


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
        self.now = timezone.now()
        User = get_user_model()
        self.users = {name: User.objects.get(username=name) for name in USERS}

    def ago(self, **delta) -> str:
        return (self.now - timedelta(**delta)).isoformat()

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
        return gate_check(service_account=self.account, request=request, body=body)

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


def _backdate(packet: PausePacket, by: timedelta) -> None:
    """The demo's one shortcut (see the module docstring): make a packet as old as `by`."""
    PausePacket.objects.filter(id=packet.id).update(
        created_at=F("created_at") - by,
        fresh_until=F("fresh_until") - by,
        expires_at=F("expires_at") - by,
    )


SCENARIOS: list[tuple[str, Callable[[_Agent], None]]] = []


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


def _onboarding_start(agent: _Agent, thread: str, number: int) -> None:
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


@_scenario("onboard-1042")
def _onboarding_waiting_for_second_approval(agent: _Agent) -> None:
    thread = "onboard-1042"
    _onboarding_start(agent, thread, 1042)
    created = agent.packet(_create_account(agent, thread, 1042, "Jane Doe", "jdoe"))
    agent.approve(created, "alice", "Matches the HR record.")
    agent.outcome(thread, 1, "landed", account_id="u-88412")
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
    # Quorum is 2 for privileged IAM: one vote in, waiting for a second reviewer.
    agent.approve(privileges, "alice", "Role approved by the team lead in IT-5521.")


@_scenario("onboard-1042.laptop")
def _nested_sub_agent(agent: _Agent) -> None:
    thread = "onboard-1042.laptop"
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
    agent.outcome(thread, 0, "landed", in_stock=14)
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
    agent.approve(order, "bob", "Standard hardware.")
    agent.outcome(thread, 1, "landed", order_id="PO-77120")


@_scenario("onboard-1043")
def _onboarding_edited_approved_then_email(agent: _Agent) -> None:
    thread = "onboard-1043"
    _onboarding_start(agent, thread, 1043)
    agent.approve(agent.packet(_create_account(agent, thread, 1043, "Sam Lee", "slee")), "bob")
    agent.outcome(thread, 1, "landed", account_id="u-88413")
    grant = agent.packet(
        agent.gate(
            thread,
            "hr-onboarding",
            2,
            "set_privileges",
            "iam.grant",
            {"user": "slee", "role": "payroll-admin"},
            context=[_employee(agent, 1043, "Sam Lee")],
            on_behalf_of="dana",
            risk={"score": 0.6, "labels": ["privilege"]},
        )
    )
    # The policy allows edits: alice narrows the role, which restarts the quorum on the new args.
    agent.approve(
        grant,
        "alice",
        "Viewer is enough for week one.",
        edited_args={"user": "slee", "role": "payroll-viewer"},
    )
    agent.approve(grant, "bob", "Agreed, viewer only.")
    agent.outcome(thread, 2, "landed", role="payroll-viewer")
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
def _onboarding_stale(agent: _Agent) -> None:
    thread = "onboard-1044"
    _onboarding_start(agent, thread, 1044)
    packet = agent.packet(
        agent.gate(
            thread,
            "hr-onboarding",
            1,
            "create_account",
            "directory.create_user",
            {"username": "praman", "display_name": "Priya Raman", "manager": "dana"},
            context=[_employee(agent, 1044, "Priya Raman", hours=2, minutes=5)],
            on_behalf_of="dana",
        )
    )
    # Two hours old with one hour of freshness: an approval now would go back to re-review.
    _backdate(packet, timedelta(hours=2))


@_scenario("onboard-1045")
def _onboarding_rejected(agent: _Agent) -> None:
    thread = "onboard-1045"
    _onboarding_start(agent, thread, 1045)
    agent.approve(agent.packet(_create_account(agent, thread, 1045, "Tom Berg", "tberg")), "alice")
    agent.outcome(thread, 1, "landed", account_id="u-88415")
    grant = agent.packet(
        agent.gate(
            thread,
            "hr-onboarding",
            2,
            "set_privileges",
            "iam.grant",
            {"user": "tberg", "role": "domain-admin"},
            context=[_employee(agent, 1045, "Tom Berg")],
            on_behalf_of="dana",
            risk={"score": 0.95, "labels": ["privilege"]},
        )
    )
    agent.reject(grant, "bob", "Domain admin is not part of any onboarding template.")


@_scenario("offboard-311")
def _offboarding_owner_changed(agent: _Agent) -> None:
    thread = "offboard-311"
    agent.gate(
        thread,
        "hr-offboarding",
        0,
        "lookup_employee",
        "hr.read",
        {"employee_id": 311},
        owner="it-approvers",
    )
    agent.outcome(thread, 0, "landed", rows=1)
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


def _payout_start(agent: _Agent, thread: str) -> None:
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
def _payout_pending(agent: _Agent) -> None:
    thread = "payout-2291"
    _payout_start(agent, thread)
    _gate_payout(agent, thread, 18500, "Acme Corp", context=_invoice(agent, 18500, "Acme Corp"))


@_scenario("payout-2288")
def _payout_expired(agent: _Agent) -> None:
    thread = "payout-2288"
    _payout_start(agent, thread)
    packet = agent.packet(
        _gate_payout(
            agent,
            thread,
            25000,
            "Globex GmbH",
            context=_invoice(agent, 25000, "Globex GmbH", hours=9, minutes=10),
        )
    )
    # Nobody decided within the 8 hours the policy gives: the sweep at the end expires it.
    _backdate(packet, timedelta(hours=9))


def _payout_unsure(agent: _Agent, thread: str, amount: int, vendor: str) -> PausePacket:
    """Approved, run, outcome unknown (bank timeout), gated again: a packet to reconcile."""
    _payout_start(agent, thread)
    first = agent.packet(
        _gate_payout(agent, thread, amount, vendor, context=_invoice(agent, amount, vendor))
    )
    agent.approve(first, "carol", "Invoice checked against the PO.")
    agent.outcome(thread, 1, "indeterminate", error="bank API timed out after 30 s")
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
    # The write may have happened: approving sends it to the reconcile branch (row 3).
    agent.approve(packet, "carol", "Checking with the bank before anything is resent.")
    return packet


@_scenario("payout-2290")
def _payout_reconciling(agent: _Agent) -> None:
    _payout_unsure(agent, "payout-2290", 12000, "Initech Ltd")


@_scenario("payout-2289")
def _payout_applied(agent: _Agent) -> None:
    packet = _payout_unsure(agent, "payout-2289", 14200, "Umbrella Supplies")
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


def _support_start(agent: _Agent, thread: str, number: int) -> None:
    agent.gate(thread, "support", 0, "find_ticket", "search.tickets", {"query": f"#{number}"})
    agent.outcome(thread, 0, "landed", hits=1)


@_scenario("support-7781")
def _support_pending_with_markup(agent: _Agent) -> None:
    thread = "support-7781"
    _support_start(agent, thread, 7781)
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
def _support_re_review(agent: _Agent) -> None:
    thread = "support-7779"
    _support_start(agent, thread, 7779)
    packet = agent.packet(
        _support_reply(
            agent,
            thread,
            7779,
            "Hi Kim, your replacement ships today.",
            context=[_ticket(agent, 7779, "Where is my order?", minutes=40)],
        )
    )
    _backdate(packet, timedelta(minutes=35))
    # Ten minutes of freshness are long gone: approving sends it back for fresh context (row 4).
    agent.approve(packet, "alice")


@_scenario("support-7780")
def _support_superseded(agent: _Agent) -> None:
    thread = "support-7780"
    _support_start(agent, thread, 7780)
    packet = agent.packet(
        _support_reply(
            agent,
            thread,
            7780,
            "Hi Kim, your refund is on its way.",
            context=[_ticket(agent, 7780, "Refund please", minutes=50)],
        )
    )
    _backdate(packet, timedelta(minutes=45))
    agent.approve(packet, "bob")
    # The orchestrator re-reads the ticket: a new pending packet replaces the stale one.
    agent.refresh(packet, [_ticket(agent, 7780, "Refund please (second reminder)", minutes=0)])


@_scenario("support-7782")
def _support_side_effect_unknown(agent: _Agent) -> None:
    thread = "support-7782"
    _support_start(agent, thread, 7782)
    body = "Hi Kim, we reset your password; check your inbox."
    first = agent.packet(
        _support_reply(agent, thread, 7782, body, context=[_ticket(agent, 7782, "Locked out")])
    )
    agent.approve(first, "bob")
    agent.outcome(thread, 1, "indeterminate", error="SMTP connection dropped after DATA")
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
def _maintenance_blocked_and_gap(agent: _Agent) -> None:
    thread = "maint-88"
    agent.gate(
        thread,
        "db-maintenance",
        0,
        "table_sizes",
        "db.read",
        {"schema": "staging"},
        owner="it-leads",
    )
    agent.outcome(thread, 0, "landed", tables=42)
    agent.gate(
        thread,
        "db-maintenance",
        1,
        "drop_old_tables",
        "db.drop_table",
        {"schema": "staging", "tables": ["events_2019", "events_2020"]},
    )
    # Never gated: the timeline flags this outcome as an ungated step.
    agent.outcome(thread, 2, "landed", command="VACUUM ANALYZE staging.events")
