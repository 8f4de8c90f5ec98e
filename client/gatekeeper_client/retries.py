"""Retries with exponential backoff and jitter, for every request the client sends."""

from __future__ import annotations

import logging
import random
from typing import Any

from .effects import Flow, Send, Sleep
from .errors import Unavailable

log = logging.getLogger("gatekeeper_client")

MAX_BACKOFF = 30.0


def backoff_delay(backoff: float, attempt: int) -> float:
    """Exponential backoff with jitter: half fixed, half random, so clients spread out."""
    ceiling = min(MAX_BACKOFF, backoff * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not secrets


def retried(send: Send, *, retries: int, backoff: float) -> Flow[Any]:
    """Send until an answer comes: `Unavailable` (no answer, 502/503/504) is retried.

    After `retries` retries the last `Unavailable` is raised. A Retry-After from the server
    sets the pause (up to MAX_BACKOFF): the server knows when it can serve again; without it,
    a backoff lottery.
    """
    attempt = 0
    while True:
        try:
            return (yield send)
        except Unavailable as error:
            if attempt >= retries:
                raise
            if error.retry_after is not None:
                delay = min(error.retry_after, MAX_BACKOFF)
            else:
                delay = backoff_delay(backoff, attempt)
            log.info("%s %s: %s; trying again in %.1f s", send.method, send.url, error, delay)
            yield Sleep(delay)
            attempt += 1
