"""What the synchronous and the asynchronous client have in common: settings and `gated`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from .steps import args_of
from .transport import api_base


class ClientBase:
    """A service account's connection to Gatekeeper.

    `base_url` is the server (`http://127.0.0.1:8000`; a trailing `/api/v1` is accepted too),
    `token` the service account's bearer token. `timeout` bounds each HTTP request (a
    long-poll gets its wait on top). A request that finds no server, or gets 502/503/504, is
    sent again up to `retries` times after `backoff`, 2 x `backoff`, 4 x ... seconds
    (with jitter, at most 30 s), or after the server's Retry-After when it gives one. Gate
    checks are safe to resend (idempotency key); an outcome resent after a lost answer may be
    recorded twice.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30,
        retries: int = 5,
        backoff: float = 0.5,
    ):
        if not token:
            raise ValueError("a service account token is required")
        self.base_url = api_base(base_url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._token = token

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs and tracebacks.
        return f"{type(self).__name__}({self.base_url!r})"

    run_step: Callable[..., Any]  # each client runs steps.run_step its own way

    def gated(
        self,
        *,
        thread_id: str,
        workflow: str,
        step_index: int,
        tool: str,
        **options: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `run_step`: calling the function gates it first.

        The call's arguments, by parameter name, are the action's args; the function runs
        with the approved args. The step name defaults to the function's name. `options` are
        `run_step`'s keyword arguments (context, risk, refresh_context, on_update, ...).
        With `AsyncGatekeeperClient` the decorated function is a coroutine function (the
        function it wraps may be either).
        """
        # A misspelt option fails here, where the step is defined, not when it first runs.
        inspect.signature(self.run_step).bind_partial(
            thread_id=thread_id, workflow=workflow, step_index=step_index, tool=tool, **options
        )
        asynchronous = inspect.iscoroutinefunction(self.run_step)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(fn) and not asynchronous:
                raise TypeError(f"{fn.__name__} is async: gate it with AsyncGatekeeperClient")

            def run(positional: tuple, keywords: dict) -> Any:
                return self.run_step(
                    fn,
                    args_of(fn, positional, keywords),
                    thread_id=thread_id,
                    workflow=workflow,
                    step_index=step_index,
                    tool=tool,
                    **options,
                )

            if asynchronous:

                @functools.wraps(fn)
                async def gated_call(*positional: Any, **keywords: Any) -> Any:
                    return await run(positional, keywords)

            else:

                @functools.wraps(fn)
                def gated_call(*positional: Any, **keywords: Any) -> Any:
                    return run(positional, keywords)

            return gated_call

        return decorate
