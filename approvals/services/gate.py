"""The gate check: "may step N run?" (DESIGN sections 2 and 6).

Every agent step passes through here, so an allowed or blocked check is a handful of plain
SQL statements and no ORM query compilation (bench/PROFILES.md measured the ORM version at
five times the CPU of the same writes): the execution upserted, the check inserted with its
answer and what the shadow policies would have answered (its idempotency key claimed by the
same INSERT) and, in the same round trip, the audit event appended last, so the chain lock is
held for one statement and the commit.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from approvals.errors import IdempotencyConflict, InvalidState, ValidationFailed
from approvals.events import EventKind
from approvals.gate_request import GateRequest
from approvals.models import Execution, GateCheck, PausePacket, Policy, ServiceAccount
from approvals.permissions import UNKNOWN_OWNER
from approvals.policy_rules import Verdict
from approvals.serializers import approval_json
from approvals.services.packets import packet_open
from approvals.services.policies import (
    RULES_SQL,
    facts_shadow_outcomes,
    facts_verdict,
    packet_settings,
    request_facts,
    rules_from_rows,
)
from approvals.services.transactions import action_atomic
from approvals.snapshot import snapshot_hash
from audit.chain import canonical_json
from audit.services import (
    COMMIT_WITHOUT_WAITING_SQL,
    Event,
    event_parameters,
    lock_and_append_one_sql,
    wait_until_durable_on_commit,
)

# The execution of this thread, made on its first step. ON CONFLICT waits for a concurrent
# maker of the same thread; its row is then invisible to this statement's snapshot, so the
# caller reads it again (_EXECUTION) when nothing comes back.
_EXECUTION_UPSERT = """
WITH made AS (
    INSERT INTO approvals_execution
           (id, service_account_id, thread_id, workflow, owner, parent_id, created_at)
    VALUES (%(id)s, %(account)s, %(thread_id)s, %(workflow)s, %(owner)s, %(parent)s, now())
    ON CONFLICT (service_account_id, thread_id) DO NOTHING
    RETURNING id, workflow)
SELECT id, workflow FROM made
UNION ALL
SELECT id, workflow FROM approvals_execution
 WHERE service_account_id = %(account)s AND thread_id = %(thread_id)s
LIMIT 1
"""
# Whether the owner a request names exists (DESIGN section 5), by its prefix. Every step may
# name its owner, so this rides in the same round trip; as a statement of its own it plans in
# a fraction of what the same test folded into the upsert took. An unknown owner is refused
# and the transaction rolled back, so the execution the upsert made for it is never written.
_OWNER_KNOWN = {
    "user:": "SELECT EXISTS (SELECT FROM auth_user WHERE username = %(owner_name)s)",
    "service:": "SELECT EXISTS (SELECT FROM approvals_serviceaccount WHERE name = %(owner_name)s)",
    "": "SELECT EXISTS (SELECT FROM auth_group WHERE name = %(owner_name)s)",
}
# Two or three statements in one round trip (Django's client-side binding sends them as one
# query): the rules, the owner's existence when one is named, the execution.
_RULES_AND_EXECUTION = {
    prefix: f"{RULES_SQL}; {known}; {_EXECUTION_UPSERT}" for prefix, known in _OWNER_KNOWN.items()
}
_RULES_AND_EXECUTION[None] = f"{RULES_SQL}; {_EXECUTION_UPSERT}"
_EXECUTION = (
    "SELECT id, workflow FROM approvals_execution WHERE service_account_id = %s AND thread_id = %s"
)
# The check, claiming its idempotency key: a concurrent request with the same key waits here
# until this transaction ends, then finds the key taken (or free, if this one rolled back).
_CHECK_INSERT = """
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
        shadow, created_at)
VALUES (%(id)s, %(account)s, %(execution)s, %(key)s, %(request_hash)s, %(request)s::jsonb,
        %(step)s, %(step_name)s, %(tool)s, %(side_effect)s, %(decision)s, %(reason)s,
        %(policy_name)s, %(policy_version)s, %(response)s::jsonb, %(shadow)s::jsonb, now())
ON CONFLICT (service_account_id, idempotency_key) DO NOTHING
RETURNING id
"""
# The check, then its gate.checked event under the chain lock, in one round trip; the event only
# if the INSERT claimed the key (a check with this new id exists only then). The transaction
# then commits without waiting for the disk under the lock; gate_check waits for the flush
# before it answers (audit.services.COMMIT_WITHOUT_WAITING_SQL says why).
_CHECK_AND_EVENT = (
    _CHECK_INSERT
    + "; "
    + lock_and_append_one_sql(when="EXISTS (SELECT FROM approvals_gatecheck WHERE id = %(id)s)")
    + "; "
    + COMMIT_WITHOUT_WAITING_SQL
)
_EARLIER_CHECK = (
    "SELECT id, request_hash, response FROM approvals_gatecheck"
    " WHERE service_account_id = %s AND idempotency_key = %s"
)


@dataclass(frozen=True)
class _ExecutionRow:
    id: uuid.UUID
    workflow: str
    owner_known: bool


def gate_check(*, service_account: ServiceAccount, request: GateRequest, body: dict) -> dict:
    """Decide a gate check and return the API response; replays it for a repeated key.

    The INSERT of the check claims its idempotency key, so ten identical requests at once make
    one check, one packet and ten equal answers; a key reused for another request is refused.
    """
    canonical = canonical_json(body)
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()
    with action_atomic():
        # Every answer, new or replayed, leaves only once the check is on disk: a replay may
        # read a check committed a moment ago, without waiting, by a concurrent request.
        wait_until_durable_on_commit()
        execution, rules = _execution_for(service_account, request)
        refusal = _refusal(request, execution)
        if refusal is not None:
            # A replay or a reused key answers as such, whatever else is wrong with it.
            earlier = _earlier_answer(service_account, request, request_hash)
            if earlier is not None:
                return earlier
            raise refusal
        return _decide(service_account, request, canonical, request_hash, execution, rules)


def _refusal(request: GateRequest, execution: _ExecutionRow) -> Exception | None:
    """Why a request cannot be checked against this execution, or None."""
    if not execution.owner_known:
        return ValidationFailed.of([{"field": "execution.owner", "message": UNKNOWN_OWNER}])
    if execution.workflow != request.workflow:
        return InvalidState(
            f"execution {request.thread_id} runs workflow {execution.workflow!r}, "
            f"not {request.workflow!r}",
            details={"thread_id": request.thread_id, "workflow": execution.workflow},
        )
    return None


def _earlier_answer(service_account, request: GateRequest, request_hash: str) -> dict | None:
    """The answer already given for this idempotency key, or None if it is unused."""
    with connection.cursor() as cursor:
        cursor.execute(_EARLIER_CHECK, [service_account.id, request.idempotency_key])
        row = cursor.fetchone()
    if row is None:
        return None
    check_id, earlier_hash, response = row
    if earlier_hash != request_hash:
        raise IdempotencyConflict(
            "this idempotency_key was used with a different request",
            details={"idempotency_key": request.idempotency_key, "check_id": str(check_id)},
        )
    return json.loads(response)


def _execution_for(service_account: ServiceAccount, request: GateRequest):
    """The thread's execution, made on its first step, and the policy rules: one round trip."""
    parent_id = None
    if request.parent_thread_id:
        parent_id = (
            Execution.objects.filter(
                service_account=service_account, thread_id=request.parent_thread_id
            )
            .values_list("id", flat=True)
            .first()
        )
        if parent_id is None:
            raise ValidationFailed.of(
                [{"field": "execution.parent_thread_id", "message": "no such execution"}]
            )
    prefix = _owner_prefix(request.owner)
    with connection.cursor() as cursor:
        cursor.execute(
            _RULES_AND_EXECUTION[prefix],
            {
                "id": uuid.uuid4(),
                "account": service_account.id,
                "thread_id": request.thread_id,
                "workflow": request.workflow,
                "owner": request.owner,
                "owner_name": request.owner.removeprefix(prefix or ""),
                "parent": parent_id,
            },
        )
        rules = rules_from_rows(cursor.fetchall())
        owner_known = True
        if prefix is not None:
            cursor.nextset()
            owner_known = cursor.fetchone()[0]
        cursor.nextset()
        row = cursor.fetchone()
        if row is None:  # made by a concurrent request for another step of this thread
            cursor.execute(_EXECUTION, [service_account.id, request.thread_id])
            row = cursor.fetchone()
    return _ExecutionRow(*row, owner_known=owner_known), rules


def _owner_prefix(owner: str) -> str | None:
    """Which kind of owner is named ("user:", "service:", "" for a group), or None for none."""
    if not owner:
        return None
    return next(prefix for prefix in _OWNER_KNOWN if owner.startswith(prefix))


def _decide(service_account, request: GateRequest, canonical, request_hash, execution, rules):
    facts = request_facts(request)
    verdict = facts_verdict(facts, rules)
    # Shadow policies ride along in the check's own INSERT: no statement of their own.
    shadows = facts_shadow_outcomes(facts, rules, verdict)
    rule = verdict.rule
    check_id = uuid.uuid4()
    policy = {"name": rule.name, "version": rule.version} if rule else None
    response = {
        "decision": verdict.decision,
        "reason": verdict.reason,
        "check_id": str(check_id),
        "policy": policy,
        "approval": None,
    }
    waits = verdict.decision == "require_approval"
    # What was asked and answered: columns of the check, and fields of its audit event.
    checked = {
        "step": request.step_index,
        "step_name": request.step_name,
        "tool": request.tool,
        "side_effect": request.side_effect,
        "decision": verdict.decision,
        "reason": verdict.reason,
    }
    event = Event(
        EventKind.GATE_CHECKED,
        actor=service_account.actor,
        execution_id=execution.id,
        data={
            "check_id": str(check_id),
            **checked,
            "policy": policy,
            "idempotency_key": request.idempotency_key,
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _CHECK_AND_EVENT,
            {
                "id": check_id,
                "account": service_account.id,
                "execution": execution.id,
                "key": request.idempotency_key,
                "request_hash": request_hash,
                "request": canonical,  # stored as jsonb: the same value as the body
                **checked,
                "policy_name": rule.name if rule else "",
                "policy_version": rule.version if rule else None,
                # A packet's answer is known once the packet is; it is written then.
                "response": None if waits else json.dumps(response),
                "shadow": json.dumps([s.as_json() for s in shadows]) if shadows else None,
                **event_parameters(event, timezone.now()),
            },
        )
        claimed = cursor.fetchone() is not None
    if not claimed:
        return _earlier_answer(service_account, request, request_hash)
    if waits:
        check = GateCheck.objects.select_related("execution").get(id=check_id)
        packet = _packet_for(check.execution, check, request, verdict, service_account)
        response["approval"] = approval_json(packet)
        GateCheck.objects.filter(id=check_id).update(response=response)
    return response


def _packet_for(execution, check, request: GateRequest, verdict: Verdict, service_account):
    """The step's open packet if it asks the same; otherwise a new pending packet."""
    rule = verdict.rule
    policy = Policy.objects.filter(name=rule.name).first() if rule else None
    context = request.context_json
    open_packet = (
        PausePacket.objects.select_for_update()
        .filter(
            execution=execution,
            step_index=request.step_index,
            status__in=PausePacket.OPEN_STATUSES,
        )
        .first()
    )
    if open_packet is not None:
        same = open_packet.snapshot_hash == snapshot_hash(
            tool=request.tool,
            args=request.args,
            context=context,
            policy_name=open_packet.policy_name,
            policy_version=open_packet.policy_version,
        )
        if not same:
            raise InvalidState(
                f"step {request.step_index} already waits for approval {open_packet.id} of "
                "another action or context; refresh that approval instead",
                details={"approval_id": str(open_packet.id)},
            )
        if request.side_effect != "not_started" and open_packet.side_effect != request.side_effect:
            # The write may have happened since the packet was made: approving must now go
            # to reconcile (branch table row 3), never straight to resume.
            open_packet.side_effect = request.side_effect
            open_packet.save(update_fields=["side_effect"])
        return open_packet
    settings_ = packet_settings(policy)
    if not execution.owner:
        # With no owner named, the approvers of the first packet own the execution.
        execution.owner = settings_.approvers
        execution.save(update_fields=["owner"])
    return packet_open(
        execution=execution,
        gate_check=check,
        step_index=request.step_index,
        step_name=request.step_name,
        tool=request.tool,
        args=request.args,
        side_effect=request.side_effect,
        context=context,
        on_behalf_of=request.on_behalf_of,
        policy_name=rule.name if rule else "",
        policy_version=rule.version if rule else None,
        reason=verdict.reason,
        packet_settings=settings_,
        actor=service_account.actor,
        callback=request.callback,
    )
