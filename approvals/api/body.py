"""Reading a JSON request body: media type, size, syntax, and shape, each a clear error."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from approvals.errors import GatekeeperError, ValidationFailed
from approvals.gate_request import json_problems


class PayloadTooLarge(GatekeeperError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(GatekeeperError):
    code = "unsupported_media_type"
    status = 415


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_body(request) -> dict:
    """The request's JSON object, or a GatekeeperError saying what is wrong with it."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json",
            details={"content_type": request.content_type or None},
        )
    limit = settings.GATEKEEPER_MAX_REQUEST_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes", details={"limit": limit})
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"the body is over {limit} bytes", details={"limit": limit}) from None
    if len(raw) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes", details={"limit": limit})
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        message = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ValidationFailed.of(
            [{"field": "body", "message": f"is not valid JSON: {message}"}]
        ) from None
    if not isinstance(body, dict):
        raise ValidationFailed.of([{"field": "body", "message": "must be a JSON object"}])
    problems = json_problems(body)
    if problems:
        raise ValidationFailed.of(problems)
    return body
