"""The client's logic as generators that yield what they need done, and drivers that do it.

Every call of the API, and `run_step` around them, is written once as a *flow*: a generator
that yields an effect (send this request, sleep this long, call this function of yours) and is
sent back its result, or has its error thrown in. `GatekeeperClient` runs flows with urllib
and `time.sleep`, `AsyncGatekeeperClient` with httpx and `asyncio.sleep`; neither holds any
of the logic, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, Union

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """One HTTP request; its result is the answer's JSON, or the typed error is thrown in."""

    method: str
    url: str
    data: bytes | None
    timeout: float


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Call:
    """Call a function of the caller's (a tool, a hook); an async driver awaits what it returns."""

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict | None = None


Effect = Union[Send, Sleep, Call]  # noqa: UP007 - evaluated at run time, on Python 3.10 too
Flow = Generator[Effect, Any, T]


def resume(flow: Flow[T], result: Any = None, error: Exception | None = None) -> tuple[bool, Any]:
    """Run the flow to its next effect, given the last one's result or error.

    Returns (False, effect), or (True, the flow's return value) once it is done.
    """
    try:
        return False, (flow.send(result) if error is None else flow.throw(error))
    except StopIteration as done:
        return True, done.value


def method_signature(flow: Callable[..., Any]) -> inspect.Signature:
    """The signature of the client method that runs `flow`: `self` first, the flow's result."""
    signature = inspect.signature(flow)
    client, *rest = signature.parameters.values()
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Flow[") and returns.endswith("]"):
        returns = returns[len("Flow[") : -1]
    return signature.replace(
        parameters=[client.replace(name="self", annotation=inspect.Parameter.empty), *rest],
        return_annotation=returns,
    )
