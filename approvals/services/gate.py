"""The gate check: "may step N run?" (DESIGN sections 2 and 6)."""

import hashlib

from django.db import IntegrityError, connection, transaction

from approvals.errors import IdempotencyConflict, InvalidState, ValidationFailed
from approvals.gate_request import GateRequest
from approvals.models import Execution, GateCheck, PausePacket, Policy, ServiceAccount
from approvals.policy_rules import Verdict
from approvals.serializers import approval_json
from approvals.services.packets import packet_open
from approvals.services.policies import packet_settings, policy_verdict
from approvals.snapshot import snapshot_hash
from audit.chain import canonical_json
from audit.models import AuditEvent
from audit.services import record_event


def gate_check(*, service_account: ServiceAccount, request: GateRequest, body: dict) -> dict:
    """Decide a gate check and return the API response; replays it for a repeated key.

    Requests with the same idempotency key are serialised by an advisory lock on the key, so
    ten identical requests at once make one check, one packet and ten equal answers.
    """
    request_hash = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [service_account.id, request.idempotency_key],
            )
        earlier = GateCheck.objects.filter(
            service_account=service_account, idempotency_key=request.idempotency_key
        ).first()
        if earlier is not None:
            if earlier.request_hash != request_hash:
                raise IdempotencyConflict(
                    "this idempotency_key was used with a different request",
                    details={
                        "idempotency_key": request.idempotency_key,
                        "check_id": str(earlier.id),
                    },
                )
            return earlier.response
        return _decide(service_account, request, body, request_hash)


def _execution_for(service_account: ServiceAccount, request: GateRequest) -> Execution:
    parent = None
    if request.parent_thread_id:
        parent = Execution.objects.filter(
            service_account=service_account, thread_id=request.parent_thread_id
        ).first()
        if parent is None:
            raise ValidationFailed.of(
                [{"field": "execution.parent_thread_id", "message": "no such execution"}]
            )
    try:
        with transaction.atomic():
            execution, _ = Execution.objects.get_or_create(
                service_account=service_account,
                thread_id=request.thread_id,
                defaults={"workflow": request.workflow, "owner": request.owner, "parent": parent},
            )
    except IntegrityError:  # created by a concurrent request for another step
        execution = Execution.objects.get(
            service_account=service_account, thread_id=request.thread_id
        )
    if execution.workflow != request.workflow:
        raise InvalidState(
            f"execution {request.thread_id} runs workflow {execution.workflow!r}, "
            f"not {request.workflow!r}",
            details={"thread_id": request.thread_id, "workflow": execution.workflow},
        )
    return execution


def _decide(service_account, request: GateRequest, body: dict, request_hash: str) -> dict:
    execution = _execution_for(service_account, request)
    verdict = policy_verdict(request)
    rule = verdict.rule
    check = GateCheck.objects.create(
        service_account=service_account,
        execution=execution,
        idempotency_key=request.idempotency_key,
        request_hash=request_hash,
        request=body,
        step_index=request.step_index,
        step_name=request.step_name,
        tool=request.tool,
        side_effect=request.side_effect,
        decision=verdict.decision,
        reason=verdict.reason,
        policy_name=rule.name if rule else "",
        policy_version=rule.version if rule else None,
    )
    record_event(
        AuditEvent.Kind.GATE_CHECKED,
        actor=service_account.actor,
        execution_id=execution.id,
        data={
            "check_id": str(check.id),
            "step": request.step_index,
            "step_name": request.step_name,
            "tool": request.tool,
            "side_effect": request.side_effect,
            "decision": verdict.decision,
            "reason": verdict.reason,
            "policy": {"name": rule.name, "version": rule.version} if rule else None,
            "idempotency_key": request.idempotency_key,
        },
    )
    packet = None
    if verdict.decision == "require_approval":
        packet = _packet_for(execution, check, request, verdict, service_account)
    check.response = {
        "decision": verdict.decision,
        "reason": verdict.reason,
        "check_id": str(check.id),
        "policy": {"name": rule.name, "version": rule.version} if rule else None,
        "approval": approval_json(packet) if packet else None,
    }
    check.save(update_fields=["response"])
    return check.response


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
    )
