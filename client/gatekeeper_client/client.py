"""`GatekeeperClient`: the API over urllib, blocking; the logic is in `calls` and `steps`."""

from __future__ import annotations

import contextlib
import functools
import http.client
import inspect
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from . import calls, steps
from .base import ClientBase
from .effects import Call, Flow, Send, Sleep, method_signature, resume
from .errors import no_answer
from .transport import answer, headers_for

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    flow: Callable[Concatenate[ClientBase, P], Flow[T]],
) -> Callable[Concatenate[GatekeeperClient, P], T]:
    """The client method that runs `flow` to its end, blocking; same signature and docstring."""

    @functools.wraps(flow)
    def method(self: GatekeeperClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._drive(flow(self, *args, **kwargs))

    method.__signature__ = method_signature(flow)  # what help() shows: self, the result
    return method


class GatekeeperClient(ClientBase):
    """A service account's connection to Gatekeeper; every call blocks until it is answered.

    `GatekeeperClient(base_url, token, *, timeout=30, retries=5, backoff=0.5)`: see
    `ClientBase` for what each setting does. Safe to share between threads.
    """

    @functools.cached_property
    def _opener(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener()

    # The API, one method per endpoint, then gated steps (ClientBase.gated decorates).
    check = _blocking(calls.check)
    dry_run = _blocking(calls.dry_run)
    approval = _blocking(calls.approval)
    wait = _blocking(calls.wait)
    refresh = _blocking(calls.refresh)
    record_outcome = _blocking(calls.record_outcome)
    change_owner = _blocking(calls.change_owner)
    execution = _blocking(calls.execution)
    run_step = _blocking(steps.run_step)

    def _drive(self, flow: Flow[T]) -> T:
        """Do what the flow asks until it returns; an effect's error goes into it to handle."""
        with contextlib.closing(flow):
            done, value = resume(flow)
            while not done:
                try:
                    result = self._perform(value)
                except Exception as error:  # noqa: BLE001 - the flow decides what it means
                    done, value = resume(flow, error=error)
                else:
                    done, value = resume(flow, result)
            return value

    def _perform(self, effect: Send | Sleep | Call) -> Any:
        if isinstance(effect, Send):
            return self._send(effect)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if inspect.iscoroutinefunction(effect.fn):
            # Thrown into the flow like any error of the call: a tool's is recorded as failed.
            raise TypeError(f"{effect.fn!r} is async: use AsyncGatekeeperClient")
        return effect.fn(*effect.args, **(effect.kwargs or {}))

    def _send(self, send: Send) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the caller's own server URL
            send.url,
            data=send.data,
            method=send.method,
            headers=headers_for(self._token, send.data),
        )
        try:
            with self._opener.open(request, timeout=send.timeout) as response:
                status, reason, headers = response.status, response.reason, response.headers
                payload = response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, reason, headers = error.code, error.reason, error.headers
                payload = _body_of(error)
        except (OSError, http.client.HTTPException) as error:
            raise no_answer(self.base_url, getattr(error, "reason", None) or error) from error
        return answer(status, reason, headers, payload, send.url)


def _body_of(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""
