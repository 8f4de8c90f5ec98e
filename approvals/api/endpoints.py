"""The orchestrator API, v1 (DESIGN section 6)."""

import re
import uuid

from django.db.models import Model
from ninja import NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import Field

from approvals.api import schemas
from approvals.api.auth import ServiceAccountBearer
from approvals.api.body import json_body
from approvals.api.errors import error_response, gatekeeper_error_response
from approvals.errors import GatekeeperError, NotFound, ValidationFailed
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
from approvals.selectors import execution_detail
from approvals.serializers import approval_json
from approvals.services.executions import (
    execution_change_owner,
    execution_for,
    packet_refresh,
    step_record_outcome,
)
from approvals.services.gate import gate_check

api = NinjaAPI(
    title="Gatekeeper orchestrator API",
    version="1",
    description="Ask before every step whether it may run; wait for a human when it must.",
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ServiceAccountBearer(),
)

ERRORS = {code: schemas.ErrorOut for code in (400, 401, 404, 405, 409, 410, 413, 415, 503)}


def _body_doc(model: type[Model] | type) -> dict:
    """Document a request body that the view reads and validates itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        _components[name] = definition
    _components[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


_components: dict = {}


@api.exception_handler(GatekeeperError)
def _gatekeeper_error(request, error: GatekeeperError):
    return gatekeeper_error_response(error)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, error):
    response = error_response(401, "unauthorized", "a valid bearer token is required")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(NinjaValidationError)
def _invalid(request, error: NinjaValidationError):
    errors = [
        {"field": ".".join(str(part) for part in e.get("loc", ())[1:]) or "request",
         "message": e.get("msg", "is invalid")}
        for e in error.errors
    ]
    return gatekeeper_error_response(ValidationFailed.of(errors or [{"field": "request", "message": "is invalid"}]))


@api.exception_handler(HttpError)
def _http_error(request, error: HttpError):
    from approvals.api.errors import STATUS_CODES

    return error_response(error.status_code, STATUS_CODES.get(error.status_code, "error"), str(error))


def _approval_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such approval") from None


def _thread_id(value: str) -> str:
    if not THREAD_ID.fullmatch(value):
        raise NotFound(f"no execution {value}")
    return value


def _packet_of(request, approval_id: str) -> PausePacket:
    packet = (
        PausePacket.objects.select_related("execution")
        .filter(id=_approval_id(approval_id), requested_by=request.auth)
        .first()
    )
    if packet is None:
        raise NotFound("no such approval")
    return packet


@api.post("/gate", response={200: schemas.GateOut, **ERRORS}, openapi_extra=_body_doc(schemas.GateIn))
def gate(request):
    """May this step run? Answers allow, block or require_approval (with the approval)."""
    body = json_body(request)
    return gate_check(service_account=request.auth, request=parse_gate_request(body), body=body)


class WaitQuery(Schema):
    wait: int = Field(0, ge=0, le=60, description="seconds to wait for the status to change")


@api.get("/approvals/{approval_id}", response={200: schemas.ApprovalOut, **ERRORS})
def approval(request, approval_id: str, query: Query[WaitQuery]):
    """An approval; with ?wait=N, answers as soon as it leaves its status, at the latest after N s."""
    packet = _packet_of(request, approval_id)
    if query.wait:
        wait_for_status_change(packet.id, packet.status, query.wait)
        packet = _packet_of(request, approval_id)
    return approval_json(packet)


@api.post(
    "/approvals/{approval_id}/refresh",
    response={201: schemas.ApprovalOut, **ERRORS},
    openapi_extra=_body_doc(schemas.RefreshIn),
)
def refresh(request, approval_id: str):
    """Fresh context for a stale approval: a new pending approval supersedes it."""
    packet_id = _approval_id(approval_id)
    refreshed = parse_refresh_request(json_body(request))
    fresh = packet_refresh(
        service_account=request.auth,
        packet_id=packet_id,
        context=refreshed.context,
        args=refreshed.args,
        side_effect=refreshed.side_effect,
    )
    return Status(201, approval_json(fresh, votes=0))


@api.post(
    "/executions/{thread_id}/steps/{index}/outcome",
    response={200: schemas.OutcomeOut, **ERRORS},
    openapi_extra=_body_doc(schemas.OutcomeIn),
)
def outcome(request, thread_id: str, index: str):
    """What happened to a step's write."""
    if not re.fullmatch(r"\d{1,10}", index) or int(index) > MAX_INDEX:
        raise ValidationFailed.of([{"field": "index", "message": f"must be 0 to {MAX_INDEX}"}])
    side_effect, detail = parse_outcome_request(json_body(request))
    return step_record_outcome(
        service_account=request.auth, thread_id=_thread_id(thread_id), step_index=int(index),
        side_effect=side_effect, detail=detail,
    )


@api.post(
    "/executions/{thread_id}/owner",
    response={200: schemas.ExecutionOut, **ERRORS},
    openapi_extra=_body_doc(schemas.OwnerIn),
)
def owner(request, thread_id: str):
    """Name a new owner: open approvals made under the old one are terminated."""
    new_owner, reason = parse_owner_request(json_body(request))
    execution = execution_change_owner(
        service_account=request.auth, thread_id=_thread_id(thread_id), owner=new_owner, reason=reason,
    )
    return execution_detail(execution)


@api.get("/executions/{thread_id}", response={200: schemas.ExecutionOut, **ERRORS})
def execution(request, thread_id: str):
    """An execution: its steps, decision record and gaps."""
    return execution_detail(execution_for(request.auth, _thread_id(thread_id)))


_original_get_openapi_schema = api.get_openapi_schema


def _openapi_with_bodies(*args, **kwargs):
    document = _original_get_openapi_schema(*args, **kwargs)
    document.setdefault("components", {}).setdefault("schemas", {}).update(_components)
    return document


api.get_openapi_schema = _openapi_with_bodies
