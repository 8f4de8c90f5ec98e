"""What a gated step's tool did, recorded once: shared by the engine adapters.

An engine records the outcome in a step of its own after the tool (a Temporal activity, a
Prefect task, a Step Functions state...), and an engine runs a step again when it cannot know
it finished: a worker died before acknowledging it, a resumed run replays from the top.
Gatekeeper appends every outcome it is sent, so the record is skipped when the step's latest
outcome already is this one: the replay neither records twice nor fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import calls
from .errors import OutcomeUnknown

if TYPE_CHECKING:
    from .base import ClientBase
    from .effects import Flow

LANDED, NOT_LANDED, FAILED, INDETERMINATE = "landed", "not_landed", "failed", "indeterminate"


def outcome_of(error: BaseException | None) -> tuple[str, dict | None]:
    """The outcome of a tool that returned (`error` None) or raised `error`, with its detail:
    `indeterminate` when it raised `OutcomeUnknown`, else `failed`."""
    if error is None:
        return LANDED, None
    if isinstance(error, OutcomeUnknown):
        return INDETERMINATE, error.detail if error.detail is not None else {"error": str(error)}
    return FAILED, {"error": f"{type(error).__name__}: {error}"}


def record_once(
    client: ClientBase,
    thread_id: str,
    step_index: int,
    side_effect: str,
    detail: Mapping[str, Any] | None = None,
) -> Flow[bool]:
    """Record the step's outcome unless it is already its latest; whether it recorded it."""
    execution = yield from calls.execution(client, thread_id)
    for step in execution["steps"]:
        if step["index"] == step_index and step["outcome"] == side_effect:
            return False
    yield from calls.record_outcome(client, thread_id, step_index, side_effect, detail)
    return True


def record(
    client: ClientBase,
    thread_id: str,
    step_index: int,
    side_effect: str,
    detail: Mapping[str, Any] | None = None,
) -> Any:
    """`record_once` run by `client`: a bool from a `GatekeeperClient`, an awaitable of one
    from an `AsyncGatekeeperClient`."""
    flow = record_once(client, thread_id, step_index, side_effect, detail)
    return client._drive(flow)  # noqa: SLF001 - the clients' one way to run a flow
