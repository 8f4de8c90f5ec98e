"""GET /api/v1/approvals/{id}?wait=N as a Django async view: the wait holds no thread.

gatekeeper.asgi sends the long-poll here and every other request to the WSGI handler. The
answer is the sync endpoint's: the same query rules, token check, 404 rule and JSON; only the
wait differs (approvals/waiters.py).
"""

import asyncio
import time

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import OperationalError
from django.http import HttpResponse
from django.utils.module_loading import import_string
from pydantic import ValidationError

from approvals import waiters
from approvals.api import schemas
from approvals.api.auth import ServiceAccountBearer
from approvals.api.endpoints import WAIT_QUERY, WaitQuery, _packet_of, _refuse_unknown_query, api
from approvals.api.errors import (
    field_errors,
    gatekeeper_error_response,
    unauthorized_response,
    unavailable_response,
)
from approvals.errors import GatekeeperError, ValidationFailed
from approvals.notify import payload_for
from approvals.serializers import approval_json

PATH_PREFIX = "/api/v1/approvals/"
# Headers every answer carries; all async-capable, so none holds a thread while a poll waits.
# (The sync-only ones serve browser sessions and the API's HTML-error replacement, which the
# view does itself.)
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

_bearer = ServiceAccountBearer()


def is_long_poll(scope: dict) -> bool:
    """Whether an ASGI request is one this view serves: GET of one approval with ?wait."""
    path = scope.get("path", "")
    return (
        scope["type"] == "http"
        and scope["method"] == "GET"
        and path.startswith(PATH_PREFIX)
        and "/" not in path[len(PATH_PREFIX) :]
        and any(part.split(b"=")[0] == b"wait" for part in scope["query_string"].split(b"&"))
    )


def _answer(request, approval_id: str) -> dict:
    return approval_json(_packet_of(request, approval_id))


async def approval_wait(request, approval_id: str) -> HttpResponse:
    here = waiters.for_this_loop()
    try:
        request.auth = await here.in_db(_bearer, request)
        if request.auth is None:
            return unauthorized_response()
        answer = await _wait(here, request, approval_id)
        # Through the schema and renderer the sync endpoint answers with: the same JSON.
        return api.create_response(
            request, schemas.ApprovalOut.model_validate(answer).model_dump(), status=200
        )
    except GatekeeperError as error:
        return gatekeeper_error_response(error)
    except OperationalError:
        return unavailable_response()


async def _wait(here: waiters.Waiters, request, approval_id: str) -> dict:
    _refuse_unknown_query(request, *WAIT_QUERY)
    try:
        query = WaitQuery.model_validate(request.GET.dict())
    except ValidationError as error:
        raise ValidationFailed.of(field_errors(error.errors(), skip=0)) from None
    answer = await here.in_db(_answer, request, approval_id)
    if not query.wait or answer["status"] != query.seen:
        return answer
    seat = here.seats.take(query.wait)
    payload = payload_for(answer["id"])
    try:
        changed = await here.listener.subscribe(payload)
    except BaseException:
        here.seats.give_back(seat)
        raise
    try:
        deadline = time.monotonic() + query.wait
        # Read again now that LISTEN is in place: a change committed in between is seen here.
        answer = await here.in_db(_answer, request, approval_id)
        while answer["status"] == query.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
            changed.clear()
            answer = await here.in_db(_answer, request, approval_id)
        return answer
    finally:
        here.listener.unsubscribe(payload, changed)
        here.seats.give_back(seat)


class WaitingHandler(ASGIHandler):
    """Django's ASGI handler for the long-poll alone, through async middleware only."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._view)
        for path in reversed(MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler

    async def _view(self, request):
        return await approval_wait(request, request.path[len(PATH_PREFIX) :])
