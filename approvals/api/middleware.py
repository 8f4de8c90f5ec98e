"""Every answer under /api/ is JSON in the error shape, even those Django or Ninja make."""

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError

from approvals.api.errors import STATUS_CODES, error_response, unavailable_response

API_PREFIX = "/api/"
MESSAGES = {
    404: "no such resource",
    405: "method not allowed here",
}


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code not in (404, 405):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        replacement = error_response(
            response.status_code, STATUS_CODES[response.status_code], MESSAGES[response.status_code]
        )
        if response.status_code == 405 and response.has_header("Allow"):
            replacement["Allow"] = response["Allow"]
        return replacement

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "payload_too_large", "the body is too large")
        if isinstance(exception, OperationalError):  # the database is down or unreachable
            return unavailable_response()
        return None
