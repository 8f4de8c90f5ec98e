"""The API's one error shape: {"error": {"code", "message", "details"}} (DESIGN section 6)."""

from django.http import JsonResponse

from approvals.errors import GatekeeperError

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


def error_response(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


def gatekeeper_error_response(error: GatekeeperError) -> JsonResponse:
    return error_response(error.status, error.code, error.message, error.details)
