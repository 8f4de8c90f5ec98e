"""Policies: versioned saves, import and export, and the settings a packet is made with."""

import json
from dataclasses import dataclass, fields

from django.conf import settings
from django.db import connection, transaction

from approvals.errors import ValidationFailed
from approvals.events import EventKind
from approvals.gate_request import GateRequest
from approvals.group_names import unknown_group_problems
from approvals.models import Policy, PolicyVersion
from approvals.policy_documents import SETTING_KEYS, normalise, policy_file_problems
from approvals.policy_rules import GateFacts, Rule, Verdict, evaluate, shadow_outcomes
from approvals.services.transactions import action_atomic
from audit.services import record_event


@dataclass(frozen=True)
class PacketSettings:
    """The rules a packet is made under, resolved from its policy and the defaults."""

    approvers: str
    escalate_to: str
    required_approvals: int
    forbid_self_approval: bool
    allow_edit: bool
    fresh_for_seconds: int
    expires_after_seconds: int
    remind_before_seconds: int

    @classmethod
    def of_packet(cls, packet) -> "PacketSettings":
        """The settings an existing packet was made with (a refresh keeps them)."""
        return cls(**{field.name: getattr(packet, field.name) for field in fields(cls)})


def policy_document(policy: Policy) -> dict:
    """The exported JSON form: what import_policies reads back unchanged."""
    document = {
        "name": policy.name,
        "priority": policy.priority,
        "enabled": policy.enabled,
        "match": policy.match,
        "effect": policy.effect,
        "mode": policy.mode,
    }
    return normalise({**document, **{key: getattr(policy, key) for key in SETTING_KEYS}})


def policies_export() -> list[dict]:
    return [policy_document(policy) for policy in Policy.objects.order_by("priority", "name")]


def policy_save(*, document: dict, actor: str) -> tuple[Policy, bool]:
    """Create or update the policy named in a validated document; returns (policy, changed).

    Saving what is already stored changes nothing: no new version, no audit event. A document
    naming a group that does not exist is refused (ValidationFailed), whoever calls.
    """
    document = normalise(document)
    with transaction.atomic():
        if problems := unknown_group_problems([document], lock=True):
            raise ValidationFailed.of(problems)
        policy = Policy.objects.select_for_update().filter(name=document["name"]).first()
        if policy is not None and policy_document(policy) == document:
            return policy, False
        if policy is None:
            policy = Policy(name=document["name"], version=1)
        else:
            policy.version += 1
        for key in ("priority", "enabled", "match", "effect", "mode"):
            setattr(policy, key, document[key])
        for key in SETTING_KEYS:
            setattr(
                policy, key, document.get(key, "" if key in ("approvers", "escalate_to") else None)
            )
        policy.save()
        PolicyVersion.objects.create(
            policy=policy, version=policy.version, document=document, changed_by=actor
        )
        record_event(
            EventKind.POLICY_CHANGED,
            actor=actor,
            data={"policy": policy.name, "version": policy.version, "document": document},
        )
    return policy, True


def policy_promote(*, policy: Policy, actor: str) -> tuple[Policy, bool]:
    """Switch a shadow policy to enforce: a new version and its policy.changed event, like any
    other change. Promoting an enforced policy changes nothing."""
    return policy_save(document={**policy_document(policy), "mode": "enforce"}, actor=actor)


def policies_import(*, documents, actor: str) -> dict[str, int]:
    """Import a whole policy file, or nothing of it when any entry is wrong."""
    problems = policy_file_problems(documents) or unknown_group_problems(documents)
    if problems:
        raise ValidationFailed(
            "; ".join(
                f"{p['entry']}: {p['field']}: {p['message']}" if p["entry"] else p["message"]
                for p in problems
            ),
            details={"errors": problems},
        )
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with action_atomic():
        for document in documents:
            existed = Policy.objects.filter(name=document["name"]).exists()
            _, changed = policy_save(document=document, actor=actor)
            counts["unchanged" if not changed else "updated" if existed else "created"] += 1
    return counts


# Read on every gate check: plain SQL, no query compilation (the gate sends it in the same
# round trip as its first statement). Disabled rules come too: the dry run traces them.
RULES_SQL = "SELECT name, priority, effect, version, match, enabled, mode FROM approvals_policy"


def rules_from_rows(rows) -> list[Rule]:
    return [
        Rule(
            name=name,
            priority=priority,
            effect=effect,
            version=version,
            match=json.loads(match),  # Django has psycopg hand jsonb over as text
            enabled=enabled,
            mode=mode,
        )
        for name, priority, effect, version, match, enabled, mode in rows
    ]


def rule_of_document(document: dict, *, version: int = 1) -> Rule:
    """A validated policy document as the rule the gate would evaluate (replay, drafts)."""
    document = normalise(document)
    return Rule(
        name=document["name"],
        priority=document["priority"],
        effect=document["effect"],
        version=version,
        match=document["match"],
        enabled=document["enabled"],
        mode=document["mode"],
    )


def policy_rules() -> list[Rule]:
    """Every policy as a rule, read fresh: an admin's change applies to the next check."""
    with connection.cursor() as cursor:
        cursor.execute(RULES_SQL)
        return rules_from_rows(cursor.fetchall())


def request_facts(request: GateRequest) -> GateFacts:
    return GateFacts(
        workflow=request.workflow,
        tool=request.tool,
        args=request.args,
        side_effect=request.side_effect,
        risk_score=request.risk_score,
        risk_labels=request.risk_labels,
    )


def facts_verdict(facts: GateFacts, rules: list[Rule], *, explain: bool = False) -> Verdict:
    """The gate's decision for these facts under these rules: the one evaluation everything
    that answers or predicts a gate check calls (the gate, the dry run, replay)."""
    return evaluate(
        rules, facts, default_decision=settings.GATEKEEPER_DEFAULT_DECISION, explain=explain
    )


def facts_shadow_outcomes(facts: GateFacts, rules: list[Rule], answer: Verdict):
    """What each shadow rule would have answered instead of `answer`."""
    return shadow_outcomes(
        rules, facts, answer, default_decision=settings.GATEKEEPER_DEFAULT_DECISION
    )


def policy_verdict(request: GateRequest, rules: list[Rule] | None = None) -> Verdict:
    """Which policy decides this gate request, and why, rule by rule: the dry run's question."""
    if rules is None:
        rules = policy_rules()
    return facts_verdict(request_facts(request), rules, explain=True)


def policy_verdicts_with_draft(request: GateRequest, draft: dict) -> tuple[Verdict, Verdict]:
    """(stored, draft): the verdict of the stored policies, and of the same policies with a
    draft document in place of the stored policy of its name (or added, when it is new).

    One read of the rules for both; nothing is written.
    """
    rules = policy_rules()
    stored = next((rule for rule in rules if rule.name == draft["name"]), None)
    draft_rule = Rule(
        name=draft["name"],
        priority=draft.get("priority", 100),
        effect=draft["effect"],
        version=stored.version + 1 if stored is not None else 1,
        match=draft.get("match", {}),
        enabled=draft.get("enabled", True),
        # A draft is tried as if enforced, whatever mode it will be saved with.
    )
    others = [rule for rule in rules if rule.name != draft["name"]]
    return policy_verdict(request, rules), policy_verdict(request, [*others, draft_rule])


def packet_settings(policy: Policy | None) -> PacketSettings:
    """A policy's settings with GATEKEEPER_DEFAULT_* for whatever it leaves out."""

    def pick(key, default):
        value = getattr(policy, key, None) if policy is not None else None
        return default if value is None or value == "" else value

    expires = pick("expires_after_seconds", settings.GATEKEEPER_DEFAULT_EXPIRES_AFTER_SECONDS)
    remind_default = settings.GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS
    return PacketSettings(
        approvers=pick("approvers", settings.GATEKEEPER_DEFAULT_APPROVERS),
        escalate_to=pick("escalate_to", ""),
        required_approvals=pick(
            "required_approvals", settings.GATEKEEPER_DEFAULT_REQUIRED_APPROVALS
        ),
        forbid_self_approval=pick(
            "forbid_self_approval", settings.GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL
        ),
        allow_edit=pick("allow_edit", settings.GATEKEEPER_DEFAULT_ALLOW_EDIT),
        fresh_for_seconds=pick("fresh_for_seconds", settings.GATEKEEPER_DEFAULT_FRESH_FOR_SECONDS),
        expires_after_seconds=expires,
        remind_before_seconds=pick(
            "remind_before_seconds", remind_default if remind_default is not None else expires // 4
        ),
    )
