"""The orchestrator API, v1 (DESIGN section 6)."""

import re
import uuid
from typing import Annotated

from ninja import NinjaAPI, Query, Schema, Status
from pydantic import Field, WithJsonSchema

from approvals.api import schemas
from approvals.api.auth import ServiceAccountBearer
from approvals.api.body import json_body
from approvals.api.dry_run import dry_run
from approvals.api.errors import register_error_handlers
from approvals.errors import NotFound, ValidationFailed
from approvals.gate_request import (
    MAX_INDEX,
    THREAD_ID,
    parse_gate_request,
    parse_outcome_request,
    parse_owner_request,
    parse_refresh_request,
)
from approvals.longpoll import wait_for_status_change
from approvals.models import PausePacket
from approvals.selectors.executions import execution_detail
from approvals.serializers import approval_json
from approvals.services.executions import (
    execution_change_owner,
    execution_for,
    packet_refresh,
    step_record_outcome,
)
from approvals.services.gate import gate_check


class GatekeeperAPI(NinjaAPI):
    """NinjaAPI that also documents request bodies the views read and validate themselves."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body_schemas: dict = {}

    def body(self, model) -> dict:
        """openapi_extra for a view taking `model` as its JSON body."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        self.body_schemas.update(schema.pop("$defs", {}))
        self.body_schemas[model.__name__] = schema
        reference = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": reference}},
            }
        }

    def get_openapi_schema(self, *args, **kwargs):
        document = super().get_openapi_schema(*args, **kwargs)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(self.body_schemas)
        # The webhook body reuses the response models' components, as the responses show them.
        webhook = schemas.WebhookOut.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        for name, schema in webhook.pop("$defs", {}).items():
            components.setdefault(name, schema)
        components["WebhookOut"] = webhook
        document["webhooks"] = {"approval": _WEBHOOK}
        return document


api = GatekeeperAPI(
    title="Gatekeeper orchestrator API",
    version="1",
    description=(
        "Ask before every step whether it may run; wait for a human when it must. "
        "Besides what the schemas say: no string in a request may hold a NUL character, JSON "
        "may nest at most 32 levels, and a body may be at most 1 MiB (or as configured)."
    ),
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ServiceAccountBearer(),
)
register_error_handlers(api)


def _header(name: str, description: str) -> dict:
    return {"name": name, "in": "header", "required": True, "schema": {"type": "string"},
            "description": description}  # fmt: skip


# What Gatekeeper posts to a service account's callback URL (DESIGN section 6).
_WEBHOOK = {
    "post": {
        "summary": "A change of one of the service account's approvals",
        "description": (
            "Posted to the callback URL on every change: approval.decided when a decision is "
            "set, approval.updated otherwise. Verify Gatekeeper-Signature as HMAC-SHA256 of "
            '"<t>.<raw body>" with the webhook secret; refuse a t more than 300 s from now, a '
            "body whose id is not the Gatekeeper-Delivery header, and an id already processed "
            "(answer 2xx to it and do nothing). Retried with backoff until a 2xx answer; a "
            "redirect is not followed."
        ),
        "parameters": [
            _header("Gatekeeper-Event", "approval.decided or approval.updated"),
            _header("Gatekeeper-Delivery", "The delivery id (a UUID), also the body's id"),
            _header("Gatekeeper-Signature", "t=<unix seconds>,v1=<hex HMAC-SHA256>"),
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/WebhookOut"}}
            },
        },
        "responses": {"2XX": {"description": "Received (or already received)"}},
    }
}


def _errors(*statuses: int) -> dict:
    """The error answers an operation can give; every one can be 401 and 503."""
    return {status: schemas.ErrorOut for status in (*statuses, 401, 503)}


# Path parameters are read as text and checked in the views: an id that cannot exist answers
# 404 like one that does not (DESIGN section 6). The document still gives clients their shape.
ApprovalId = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
ThreadId = Annotated[str, WithJsonSchema({"type": "string", "pattern": f"^{THREAD_ID.pattern}$"})]
StepIndex = Annotated[str, WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_INDEX})]


def _approval_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such approval") from None


def _thread_id(value: str) -> str:
    if not THREAD_ID.fullmatch(value):
        raise NotFound(f"no execution {value}")
    return value


def _refuse_unknown_query(request, *known: str) -> None:
    # As with unknown body keys: a misspelt `?wiat=30` must not silently answer at once.
    unknown = sorted(set(request.GET) - set(known))
    if unknown:
        raise ValidationFailed.of(
            [{"field": name, "message": "is not a known query parameter"} for name in unknown]
        )


def _packet_of(request, approval_id: str) -> PausePacket:
    packet = (
        PausePacket.objects.select_related("execution")
        .filter(id=_approval_id(approval_id), requested_by=request.auth)
        .first()
    )
    if packet is None:
        raise NotFound("no such approval")
    return packet


@api.post(
    "/gate",
    response={200: schemas.GateOut, **_errors(400, 409, 413, 415)},
    openapi_extra=api.body(schemas.GateIn),
)
def gate(request):
    """May this step run? Answers allow, block or require_approval (with the approval)."""
    _refuse_unknown_query(request)
    body = json_body(request)
    return gate_check(service_account=request.auth, request=parse_gate_request(body), body=body)


@api.post(
    "/gate/dry-run",
    response={200: schemas.DryRunOut, **_errors(400, 413, 415)},
    openapi_extra=api.body(schemas.DryRunIn),
)
def gate_dry_run(request):
    """What the gate would answer for each check (allow, block or require_approval, and the
    policy), without writing anything: no check, execution, approval or record event. Each
    check is a gate request; its idempotency key, thread and step may be left out."""
    _refuse_unknown_query(request)
    return dry_run(json_body(request))


class WaitQuery(Schema):
    wait: int = Field(0, ge=0, le=60, description="seconds to wait for the status to change")
    seen: PausePacket.Status = Field(
        PausePacket.Status.PENDING,
        description="the status the client last saw: a poll answers at once when the "
        "approval's status is another one",
    )

    def waits_for(self, packet: PausePacket) -> bool:
        return bool(self.wait) and packet.status == self.seen


WAIT_QUERY = ("wait", "seen")


@api.get("/approvals/{approval_id}", response={200: schemas.ApprovalOut, **_errors(400, 404)})
def approval(request, approval_id: ApprovalId, query: Query[WaitQuery]):
    """An approval. With ?wait=N: once its status is not `seen` (by default pending), or after
    N seconds at most; at once when it already is not. Refused with 503 and Retry-After when
    too many polls wait on the server already."""
    _refuse_unknown_query(request, *WAIT_QUERY)
    packet = _packet_of(request, approval_id)
    if query.waits_for(packet):
        wait_for_status_change(packet.id, query.seen, query.wait)
        packet = _packet_of(request, approval_id)
    return approval_json(packet)


@api.post(
    "/approvals/{approval_id}/refresh",
    response={201: schemas.ApprovalOut, **_errors(400, 404, 409, 410, 413, 415)},
    openapi_extra=api.body(schemas.RefreshIn),
)
def refresh(request, approval_id: ApprovalId):
    """Fresh context for a stale approval: a new pending approval supersedes it."""
    _refuse_unknown_query(request)
    packet_id = _approval_id(approval_id)
    refreshed = parse_refresh_request(json_body(request))
    fresh = packet_refresh(
        service_account=request.auth,
        packet_id=packet_id,
        context=refreshed.context,
        args=refreshed.args,
        side_effect=refreshed.side_effect,
        callback=refreshed.callback,
    )
    return Status(201, approval_json(fresh, votes=0))


@api.post(
    "/executions/{thread_id}/steps/{index}/outcome",
    response={200: schemas.OutcomeOut, **_errors(400, 404, 413, 415)},
    openapi_extra=api.body(schemas.OutcomeIn),
)
def outcome(request, thread_id: ThreadId, index: StepIndex):
    """What happened to a step's write."""
    _refuse_unknown_query(request)
    # [0-9], not \d: int() would read other scripts' digits too.
    if not re.fullmatch(r"[0-9]{1,10}", index) or int(index) > MAX_INDEX:
        raise ValidationFailed.of([{"field": "index", "message": f"must be 0 to {MAX_INDEX}"}])
    side_effect, detail = parse_outcome_request(json_body(request))
    return step_record_outcome(
        service_account=request.auth,
        thread_id=_thread_id(thread_id),
        step_index=int(index),
        side_effect=side_effect,
        detail=detail,
    )


@api.post(
    "/executions/{thread_id}/owner",
    response={200: schemas.ExecutionOut, **_errors(400, 404, 413, 415)},
    openapi_extra=api.body(schemas.OwnerIn),
)
def owner(request, thread_id: ThreadId):
    """Name a new owner: open approvals made under the old one are terminated."""
    _refuse_unknown_query(request)
    new_owner, reason = parse_owner_request(json_body(request))
    execution = execution_change_owner(
        service_account=request.auth,
        thread_id=_thread_id(thread_id),
        owner=new_owner,
        reason=reason,
    )
    return execution_detail(execution)


@api.get("/executions/{thread_id}", response={200: schemas.ExecutionOut, **_errors(400, 404)})
def execution(request, thread_id: ThreadId):
    """An execution: its steps, decision record and gaps."""
    _refuse_unknown_query(request)
    return execution_detail(execution_for(request.auth, _thread_id(thread_id)))
