"""The orchestrator API (v1), one flow per endpoint (see `effects` for what a flow is).

Each flow's first argument is the client; the rest, and the docstring, are the client
method's of the same name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .bodies import Context, dry_run_body, gate_body, refresh_body
from .effects import Flow, Send, Sleep
from .errors import AlreadyDecided
from .models import Approval, DryRunResult, GateDecision
from .retries import backoff_delay, retried
from .transport import encode, quote, url_for

if TYPE_CHECKING:
    from .base import ClientBase

MAX_WAIT = 60  # the server's bound on ?wait=N


def request(
    client: ClientBase,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Flow[Any]:
    send = Send(
        method, url_for(client.base_url, path, query), encode(body), timeout or client.timeout
    )
    return (yield from retried(send, retries=client.retries, backoff=client.backoff))


def check(
    client: ClientBase,
    thread_id: str,
    workflow: str,
    step_index: int,
    step_name: str | None,
    tool: str,
    args: Mapping[str, Any] | None,
    *,
    side_effect: str = "not_started",
    context: Context | None = None,
    risk: float | Mapping[str, Any] | None = None,
    owner: str | None = None,
    parent_thread_id: str | None = None,
    on_behalf_of: str | None = None,
    idempotency_key: str | None = None,
    callback: Mapping[str, Any] | None = None,
) -> Flow[GateDecision]:
    """May step `step_index` of execution `thread_id` run `tool` with `args`? (POST /gate)

    `side_effect` says whether this write already happened (`not_started`, `landed`,
    `indeterminate`); `context` is what the agent knew (see `context_items`); `risk` a score
    from 0 to 1 or `{"score", "labels"}`. Without `idempotency_key` one is derived from the
    request (see `idempotency_key_for`), so a resent request replays the first answer.
    `callback` is your own small JSON object (4096 bytes at most), echoed with the approval in
    every answer and webhook: a relay finds the run that waits on the approval by it.
    """
    body = gate_body(
        thread_id,
        workflow,
        step_index,
        step_name,
        tool,
        args,
        side_effect=side_effect,
        context=context,
        risk=risk,
        owner=owner,
        parent_thread_id=parent_thread_id,
        on_behalf_of=on_behalf_of,
        idempotency_key=idempotency_key,
        callback=callback,
    )
    return GateDecision.from_json((yield from request(client, "POST", "/gate", body)))


def dry_run(
    client: ClientBase,
    workflow: str,
    actions: Iterable[str | Mapping[str, Any]],
    *,
    owner: str | None = None,
) -> Flow[list[DryRunResult]]:
    """What the gate would answer for each action of `workflow`, in order: allow, block or
    require_approval, and the policy that decides. (POST /gate/dry-run)

    Nothing is asked of reviewers or recorded: plan with it (tell a model which tools need a
    human), never run a step on it. An action is a tool name or a mapping with `tool` and
    optionally `args`, `side_effect` and `risk` (as for `check`); at most 100 per call.
    """
    body = dry_run_body(workflow, actions, owner)
    data = yield from request(client, "POST", "/gate/dry-run", body)
    return [DryRunResult.from_json(item) for item in data["results"]]


def approval(
    client: ClientBase, approval_id: str, *, wait: int = 0, seen: str | None = None
) -> Flow[Approval]:
    """The approval now; with `wait` (0 to 60 s), once its status is not `seen` (the status
    the caller last saw; pending if None) or after `wait`, and at once when it already is not.
    """
    query = {"wait": str(wait)} if wait else None
    if query and seen:
        query["seen"] = seen
    data = yield from request(
        client,
        "GET",
        f"/approvals/{quote(approval_id)}",
        query=query,
        timeout=client.timeout + wait,
    )
    return Approval.from_json(data)


def wait(
    client: ClientBase,
    approval_id: str,
    *,
    timeout: float | None = None,
    poll: int = 55,
    while_in: Iterable[str] = ("pending",),
) -> Flow[Approval]:
    """Long-poll until the approval's status leaves `while_in`, or `timeout` seconds pass.

    Returns the approval as it then is: check `status`/`decision` (after a timeout it may
    still be pending). Each request waits up to `poll` seconds on the server (at most 60),
    which answers the moment the status changes; each poll names the status last seen, so
    a change between two polls is answered at once. Network errors and 503 are retried as
    for every request (a server too busy to hold the poll says when to come back, in
    Retry-After). Should a poll still come back early unchanged, the next one waits a
    backoff first instead of spinning.
    """
    if not 1 <= poll <= MAX_WAIT:
        raise ValueError(f"poll must be 1 to {MAX_WAIT} seconds")
    waiting_in = tuple(while_in)
    deadline = None if timeout is None else time.monotonic() + timeout
    early = 0
    seen = None
    while True:
        seconds = poll
        if deadline is not None:
            seconds = max(0, min(poll, math.ceil(deadline - time.monotonic())))
        started = time.monotonic()
        current = yield from approval(client, approval_id, wait=seconds, seen=seen)
        if current.status not in waiting_in:
            return current
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return current
        changed, seen = current.status != (seen or "pending"), current.status
        if seconds and not changed and now - started < seconds / 2:
            early += 1
            pause = backoff_delay(client.backoff, early - 1)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - now))
            yield Sleep(pause)
        else:
            early = 0


def refresh(
    client: ClientBase,
    approval_id: str,
    context: Context,
    args: Mapping[str, Any] | None = None,
    side_effect: str | None = None,
    callback: Mapping[str, Any] | None = None,
) -> Flow[Approval]:
    """New context (and optionally args) for a stale approval: returns the new approval.

    It keeps the stale approval's `callback` unless `callback` names another (the run that
    now waits on it, as a Step Functions task token changes).

    Only a `re_review` approval, or a `pending` one past `fresh_until`, can be refreshed
    (else `InvalidState`; `Expired` when its deadline passed). The old approval becomes
    `superseded`. When a resent refresh finds that an earlier attempt already went through,
    the approval that superseded it is returned.
    """
    path = f"/approvals/{quote(approval_id)}/refresh"
    try:
        data = yield from request(
            client, "POST", path, refresh_body(context, args, side_effect, callback)
        )
    except AlreadyDecided:
        old = yield from approval(client, approval_id)
        if old.status == "superseded" and old.superseded_by:
            return (yield from approval(client, old.superseded_by))
        raise
    return Approval.from_json(data)


def record_outcome(
    client: ClientBase,
    thread_id: str,
    step_index: int,
    side_effect: str,
    detail: Mapping[str, Any] | None = None,
) -> Flow[bool]:
    """What happened to a step's write: `landed`, `not_landed`, `indeterminate` or `failed`.

    Returns whether the step was gated (an outcome for an ungated step is kept and flagged
    as a gap). Reporting `indeterminate` while the step's approval is open sends it to
    reconcile.
    """
    path = f"/executions/{quote(thread_id)}/steps/{int(step_index)}/outcome"
    body = {"side_effect": side_effect, "detail": dict(detail or {})}
    return bool((yield from request(client, "POST", path, body))["gated"])


def change_owner(client: ClientBase, thread_id: str, owner: str, reason: str = "") -> Flow[dict]:
    """Name the execution's new owner; its open approvals are terminated. Returns it."""
    body = {"owner": owner, "reason": reason}
    return (yield from request(client, "POST", f"/executions/{quote(thread_id)}/owner", body))


def execution(client: ClientBase, thread_id: str) -> Flow[dict]:
    """The execution: owner, status, steps with decisions and outcomes, record, gaps."""
    return (yield from request(client, "GET", f"/executions/{quote(thread_id)}"))
