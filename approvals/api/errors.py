"""The API's one error shape: {"error": {"code", "message", "details"}} (DESIGN section 6)."""

from django.http import JsonResponse
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from approvals.errors import DATABASE_UNREACHABLE, GatekeeperError, ValidationFailed

STATUS_CODES = {
    400: "validation_error",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    410: "expired",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, details: dict | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


def gatekeeper_error_response(error: GatekeeperError) -> JsonResponse:
    response = error_response(error.status, error.code, error.message, error.details)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def unauthorized_response() -> JsonResponse:
    response = error_response(401, "unauthorized", "a valid bearer token is required")
    response["WWW-Authenticate"] = "Bearer"
    return response


def unavailable_response() -> JsonResponse:
    return error_response(503, "unavailable", DATABASE_UNREACHABLE)


def field_errors(errors: list, *, skip: int) -> list[dict]:
    """Pydantic's errors as the API's details; `skip` leading parts of loc say where, not what."""
    return [
        {
            "field": ".".join(str(part) for part in e.get("loc", ())[skip:]) or "request",
            "message": e.get("msg", "is invalid"),
        }
        for e in errors
    ] or [{"field": "request", "message": "is invalid"}]


def register_error_handlers(api) -> None:
    """Every error Ninja or the services raise becomes the one error shape."""

    @api.exception_handler(GatekeeperError)
    def _gatekeeper_error(request, error: GatekeeperError):
        return gatekeeper_error_response(error)

    @api.exception_handler(AuthenticationError)
    def _unauthorized(request, error):
        return unauthorized_response()

    @api.exception_handler(NinjaValidationError)
    def _invalid(request, error: NinjaValidationError):
        # loc is ("query", "wait") and the like: the first part names where, not what.
        return gatekeeper_error_response(ValidationFailed.of(field_errors(error.errors, skip=1)))

    @api.exception_handler(HttpError)
    def _http_error(request, error: HttpError):
        code = STATUS_CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error))
