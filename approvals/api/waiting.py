"""GET /api/v1/approvals/{id}?wait=N as a Django async view: the wait holds no thread.

gatekeeper.asgi sends the long-poll here and every other request to the WSGI handler. The
answer is the sync endpoint's: the same query rules, token check, 404 rule and JSON; only the
wait differs (approvals/waiters.py).
"""

import asyncio
import time

from django.db import OperationalError
from django.http import HttpResponse
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
from gatekeeper.async_views import AsyncViewHandler

PATH_PREFIX = "/api/v1/approvals/"

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


def _first_read(request, approval_id: str, invalid, answers, tokens) -> dict | None:
    """The token's account, then the query's verdict, then the approval; None for no account.

    In that order, as Ninja runs the sync endpoint: a bad query is told only to its owner.
    """
    request.auth = _bearer(request)
    if request.auth is None:
        return None
    tokens.put(request, request.auth)
    if invalid is not None:
        raise invalid
    return _answer(request, approval_id, answers)


def _from_memory(here: waiters.Waiters, request, payload: str) -> dict | None:
    """The answer kept for the packet, when the token was checked a moment ago: no read."""
    account = here.tokens.get(request)
    if account is None:
        return None
    request.auth = account
    return here.answers.get(payload, account.id)


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
            answer = await here.in_db(_first_read, request, approval_id, invalid, None, here.tokens)
        else:
            # Watch first, then read: a change committed after the read wakes this waiter.
            async with here.watching(payload, query.wait) as changed:
                kept = here.answers if changed is not None else None
                answer = _from_memory(here, request, payload) if kept and not invalid else None
                if answer is None:
                    answer = await here.in_db(
                        _first_read, request, approval_id, invalid, kept, here.tokens
                    )
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


class WaitingHandler(AsyncViewHandler):
    """The long-poll's view under gatekeeper.asgi."""

    def __init__(self):
        super().__init__(self._view)

    async def _view(self, request):
        response = await approval_wait(request, request.path[len(PATH_PREFIX) :])
        # As CommonMiddleware sets it for the sync endpoint: the answer's end is plain.
        response["Content-Length"] = str(len(response.content))
        return response
