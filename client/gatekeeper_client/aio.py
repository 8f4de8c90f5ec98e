"""`AsyncGatekeeperClient`: the same API as `GatekeeperClient`, awaited, over httpx.

Install it with the `async` extra: `pip install "gatekeeper-client[async]"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

try:
    import httpx
except ImportError as missing:  # the core needs nothing; only this module needs httpx
    raise ImportError(
        'AsyncGatekeeperClient needs httpx: pip install "gatekeeper-client[async]"'
    ) from missing

from . import calls, steps
from .base import ClientBase
from .effects import Call, Flow, Send, Sleep, method_signature, resume
from .errors import no_answer
from .transport import answer, headers_for

P = ParamSpec("P")
T = TypeVar("T")


def _awaited(
    flow: Callable[Concatenate[ClientBase, P], Flow[T]],
) -> Callable[Concatenate[AsyncGatekeeperClient, P], Awaitable[T]]:
    """The client method that runs `flow` to its end, awaiting; same signature and docstring."""

    @functools.wraps(flow)
    async def method(self: AsyncGatekeeperClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._drive(flow(self, *args, **kwargs))

    method.__signature__ = method_signature(flow)  # what help() shows: self, the result
    return method


class AsyncGatekeeperClient(ClientBase):
    """A service account's connection to Gatekeeper for asyncio code: every call is awaited.

    `AsyncGatekeeperClient(base_url, token, *, timeout=30, retries=5, backoff=0.5)`, the
    settings of `GatekeeperClient`. Its HTTP connections belong to the event loop that first
    uses it: close it there, with `await client.aclose()` or `async with client:`.
    """

    @functools.cached_property
    def _http(self) -> httpx.AsyncClient:
        # Redirects are followed as urllib follows them for the blocking client.
        return httpx.AsyncClient(follow_redirects=True)

    async def aclose(self) -> None:
        if "_http" in self.__dict__:
            await self.__dict__.pop("_http").aclose()

    async def __aenter__(self) -> AsyncGatekeeperClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    check = _awaited(calls.check)
    dry_run = _awaited(calls.dry_run)
    approval = _awaited(calls.approval)
    wait = _awaited(calls.wait)
    refresh = _awaited(calls.refresh)
    record_outcome = _awaited(calls.record_outcome)
    change_owner = _awaited(calls.change_owner)
    execution = _awaited(calls.execution)
    run_step = _awaited(steps.run_step)

    async def _drive(self, flow: Flow[T]) -> T:
        """Do what the flow asks until it returns; an effect's error goes into it to handle."""
        with contextlib.closing(flow):
            done, value = resume(flow)
            while not done:
                try:
                    result = await self._perform(value)
                except Exception as error:  # noqa: BLE001 - the flow decides what it means
                    done, value = resume(flow, error=error)
                else:
                    done, value = resume(flow, result)
            return value

    async def _perform(self, effect: Send | Sleep | Call) -> Any:
        if isinstance(effect, Send):
            return await self._send(effect)
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
            return None
        result = effect.fn(*effect.args, **(effect.kwargs or {}))
        return await result if inspect.isawaitable(result) else result

    async def _send(self, send: Send) -> Any:
        try:
            response = await self._http.request(
                send.method,
                send.url,
                content=send.data,
                headers=headers_for(self._token, send.data),
                timeout=send.timeout,
            )
        except httpx.RequestError as error:
            raise no_answer(self.base_url, error) from error
        return answer(
            response.status_code,
            response.reason_phrase,
            response.headers,
            response.content,
            send.url,
        )
