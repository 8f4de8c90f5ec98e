"""Reads of executions: which a user may read, and their steps shaped for the API and pages."""

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse

from approvals.gaps import find_gaps
from approvals.models import Execution, GateCheck, PausePacket, StepOutcome
from approvals.selectors.packets import packets_visible_to
from audit.actors import user_actor
from audit.models import AuditEvent
from audit.selectors.access import can_browse


def execution_steps(execution: Execution) -> tuple[list[dict], list[dict]]:
    """Each gated step with its final decision, outcome and latest approval; and the gaps.

    Three queries whatever the size of the execution.
    """
    steps: dict[int, dict] = {}
    for index, name, decision in (
        GateCheck.objects.filter(execution=execution)
        .order_by("created_at")
        .values_list("step_index", "step_name", "decision")
    ):
        steps[index] = {
            "index": index,
            "name": name,
            "decision": decision,
            "outcome": None,
            "approval": None,
        }
    for index, packet_id, decision in (
        PausePacket.objects.filter(execution=execution)
        .order_by("created_at")
        .values_list("step_index", "id", "decision")
    ):
        if index in steps:
            steps[index]["approval"] = packet_id
            steps[index]["decision"] = decision or "require_approval"
    outcome_steps = set()
    for index, side_effect in (
        StepOutcome.objects.filter(execution=execution)
        .order_by("created_at")
        .values_list("step_index", "side_effect")
    ):
        outcome_steps.add(index)
        if index in steps:
            steps[index]["outcome"] = side_effect
    gaps = find_gaps({i: s["decision"] for i, s in steps.items()}, outcome_steps)
    return [steps[i] for i in sorted(steps)], gaps


def execution_detail(execution: Execution) -> dict:
    """The JSON of GET /api/v1/executions/{thread_id}."""
    steps, gaps = execution_steps(execution)
    record = [
        {"seq": seq, "at": at, "kind": kind, "actor": actor, "data": data}
        for seq, at, kind, actor, data in AuditEvent.objects.filter(execution_id=execution.id)
        .order_by("id")
        .values_list("id", "at", "kind", "actor", "data")
    ]
    waiting = PausePacket.objects.filter(
        execution=execution, status__in=PausePacket.OPEN_STATUSES
    ).exists()
    return {
        "id": execution.id,
        "thread_id": execution.thread_id,
        "workflow": execution.workflow,
        "owner": execution.owner,
        "status": "waiting" if waiting else "active",
        "url": settings.GATEKEEPER_BASE_URL + reverse("approvals:execution", args=[execution.id]),
        "parent_thread_id": execution.parent.thread_id if execution.parent_id else None,
        "steps": steps,
        "record": record,
        "gaps": gaps,
    }


def executions_visible_to(user) -> QuerySet[Execution]:
    """Executions whose record the user may read (DESIGN section 5).

    Auditors and superusers read every one; others the executions they own (as the owning user or
    a member of the owning group) and those with a packet they may view. One query.
    """
    executions = Execution.objects.all()
    if not user.is_active:
        return executions.none()
    if can_browse(user):
        return executions
    # The same reading of an owner string as approvals.permissions.owner_principal.
    owned_by_group = (
        Q(owner__in=user.groups.values("name"))
        & ~Q(owner__startswith="user:")
        & ~Q(owner__startswith="service:")
    )
    return executions.filter(
        Q(owner=user_actor(user))
        | owned_by_group
        | Exists(packets_visible_to(user).filter(execution=OuterRef("pk")))
    )


def execution_for_user(*, user, execution_id) -> Execution | None:
    return (
        executions_visible_to(user)
        .select_related("service_account")
        .filter(id=execution_id)
        .first()
    )
