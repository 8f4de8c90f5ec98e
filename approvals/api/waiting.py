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
from approvals.serializers import approval_json
from approvals.wakeups import payload_for

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


def _answer(request, approval_id: str, answers: waiters.Answers | None) -> dict:
    """The approval's JSON; with `answers` (only for a poll already watching the packet, which
    a notification in flight will wake), as kept since its last change when it is."""
    if answers is None:
        return approval_json(_packet_of(request, approval_id))
    payload = payload_for(approval_id)
    kept = answers.get(payload, request.auth.id)
    if kept is not None:
        return kept
    generation = answers.generation
    answer = approval_json(_packet_of(request, approval_id))
    answers.put(payload, request.auth.id, answer, generation)
    return answer


def _first_read(request, approval_id: str, invalid, answers) -> dict | None:
    """The token's account, then the query's verdict, then the approval; None for no account.

    In that order, as Ninja runs the sync endpoint: a bad query is told only to its owner.
    """
    request.auth = _bearer(request)
    if request.auth is None:
        return None
    if invalid is not None:
        raise invalid
    return _answer(request, approval_id, answers)


def _query(request) -> tuple[WaitQuery | None, ValidationFailed | None]:
    try:
        _refuse_unknown_query(request, *WAIT_QUERY)
        return WaitQuery.model_validate(request.GET.dict()), None
    except ValidationFailed as error:
        return None, error
    except ValidationError as error:
        return None, ValidationFailed.of(field_errors(error.errors(), skip=0))


async def approval_wait(request, approval_id: str) -> HttpResponse:
    here = waiters.for_this_loop()
    query, invalid = _query(request)
    try:
        payload = payload_for(approval_id)
    except ValueError:
        payload = None  # no such approval: the first read says 404
    try:
        if query is None or not query.wait or payload is None:
            answer = await here.in_db(_first_read, request, approval_id, invalid, None)
        else:
            # Watch first, then read: a change committed after the read wakes this waiter.
            async with here.watching(payload, query.wait) as changed:
                kept = here.answers if changed is not None else None
                answer = await here.in_db(_first_read, request, approval_id, invalid, kept)
                if answer is not None and answer["status"] == query.seen:
                    if changed is None:
                        raise here.seats.busy()
                    answer = await _until_changed(
                        here, request, approval_id, query, changed, answer
                    )
        if answer is None:
            return unauthorized_response()
        # Through the schema and renderer the sync endpoint answers with: the same JSON.
        return api.create_response(
            request, schemas.ApprovalOut.model_validate(answer).model_dump(), status=200
        )
    except GatekeeperError as error:
        return gatekeeper_error_response(error)
    except OperationalError:
        return unavailable_response()


async def _until_changed(here, request, approval_id, query: WaitQuery, changed, answer) -> dict:
    """The approval once its status is not query.seen, or as last read when the time is up
    (every change to a packet notifies, so the last read is still its state)."""
    deadline = time.monotonic() + query.wait
    while answer["status"] == query.seen:
        try:
            await asyncio.wait_for(changed.wait(), deadline - time.monotonic())
        except TimeoutError:
            break
        changed.clear()
        answer = await here.in_db(_answer, request, approval_id, here.answers)
    return answer


class WaitingHandler(ASGIHandler):
    """Django's ASGI handler for the long-poll alone, through async middleware only."""

    async def __call__(self, scope, receive, send):
        # Without Django's per-request ThreadSensitiveContext: the thread it makes for the
        # request's signals would live as long as the poll waits. They run on asgiref's one
        # shared thread instead (they only check this loop thread's unused connection).
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._view)
        for path in reversed(MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler

    async def _view(self, request):
        response = await approval_wait(request, request.path[len(PATH_PREFIX) :])
        # As CommonMiddleware sets it for the sync endpoint: the answer's end is plain.
        response["Content-Length"] = str(len(response.content))
        return response
