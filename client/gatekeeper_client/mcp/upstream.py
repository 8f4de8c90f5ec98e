"""Connections to the upstream MCP servers: one official-SDK `ClientSession` each, kept open.

Each link runs in a task of its own (the SDK's transports are task-scoped context managers),
reconnects when its connection breaks, and tells a broken connection (the upstream may or may
not have acted: `UpstreamBroken`) apart from an error the upstream answered (`MCPError`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from .config import Upstream

log = logging.getLogger("gatekeeper_client.mcp")

CONNECTION_CLOSED = types.CONNECTION_CLOSED
REQUEST_TIMEOUT = types.REQUEST_TIMEOUT
RECONNECT_DELAY = 1.0  # seconds between attempts to reach an upstream that is down
# What a transport raises when its peer goes away under it.
BROKEN = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    httpx2.TransportError,
    OSError,
)


class UpstreamBroken(Exception):
    """The connection to the upstream broke before it answered: the call may or may not have run."""


class UpstreamLink:
    """The gateway's live client session with one upstream server."""

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self._session: ClientSession | None = None
        self._ready = anyio.Event()
        self._broken = anyio.Event()
        self._error: str | None = None

    @property
    def name(self) -> str:
        return self.upstream.name

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the connection open until cancelled, reconnecting whenever it breaks."""
        started = False
        while True:
            try:
                async with self._open() as session:
                    self._session, self._error = session, None
                    self._ready.set()
                    if not started:
                        started = True
                        task_status.started()
                    await self._broken.wait()
            except Exception as error:  # noqa: BLE001 - reported, then retried
                self._error = f"{type(error).__name__}: {error}"
                log.warning("upstream %s: connection lost: %s", self.name, self._error)
                if not started:
                    raise
            self._session, self._ready, self._broken = None, anyio.Event(), anyio.Event()
            await anyio.sleep(RECONNECT_DELAY)

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[ClientSession]:
        upstream = self.upstream
        if upstream.url is not None:
            transport = streamable_http_client(upstream.url)
        else:
            params = StdioServerParameters(
                command=upstream.command[0],
                args=list(upstream.command[1:]),
                env=dict(upstream.env) or None,
                cwd=upstream.cwd,
            )
            transport = stdio_client(params)
        async with transport as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session

    async def session(self, timeout: float = 30) -> ClientSession:
        with anyio.move_on_after(timeout):
            await self._ready.wait()
        if self._session is None:
            raise UpstreamBroken(f"upstream {self.name} is not reachable ({self._error})")
        return self._session

    async def request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request to the upstream: a broken connection is `UpstreamBroken` (and reconnects)."""
        session = await self.session()
        try:
            return await getattr(session, method)(*args, **kwargs)
        except MCPError as error:
            if error.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                self._broken.set()
                raise UpstreamBroken(f"upstream {self.name}: {error.message}") from error
            raise
        except BROKEN as error:
            self._broken.set()
            raise UpstreamBroken(f"upstream {self.name}: {type(error).__name__}") from error

    async def everything(self, method: str, field: str) -> list:
        """Every item of a paginated list (tools, resources, prompts); none if not offered."""
        items, cursor = [], None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                page = await self.request(method, params=params)
            except MCPError as error:
                if error.code == types.METHOD_NOT_FOUND:
                    return items
                raise
            items.extend(getattr(page, field))
            cursor = page.next_cursor
            if not cursor:
                return items
