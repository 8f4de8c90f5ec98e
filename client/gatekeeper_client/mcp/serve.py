"""Running the gateway: over stdio, or over streamable HTTP; and the `gatekeeper-mcp` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator

import anyio
import uvicorn
from mcp.server.stdio import stdio_server

from ..aio import AsyncGatekeeperClient
from .config import Config, ConfigError, load
from .gateway import Gateway, serve_links
from .upstream import UpstreamLink

log = logging.getLogger("gatekeeper_client.mcp")


@contextlib.asynccontextmanager
async def running_gateway(config: Config) -> AsyncIterator[Gateway]:
    """A gateway with every upstream connected and its catalogue read; closed on exit."""
    async with (
        AsyncGatekeeperClient(config.url, config.token) as gk,
        anyio.create_task_group() as tasks,
    ):
        links = [UpstreamLink(upstream) for upstream in config.upstreams]
        await serve_links(links, tasks)
        gateway = Gateway(config, links, gk)
        await gateway.load_catalogue()
        try:
            yield gateway
        finally:
            tasks.cancel_scope.cancel()


async def serve_stdio(config: Config) -> None:
    """Serve one MCP client on this process's stdin and stdout until it hangs up."""
    async with running_gateway(config) as gateway:
        server = gateway.server()
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


async def serve_http(config: Config, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve any number of MCP clients over streamable HTTP at http://host:port/mcp."""
    # Bound here, before anything starts: a port in use is one clear OSError, not uvicorn's exit.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    async with running_gateway(config) as gateway:
        app = gateway.server().streamable_http_app(host=host)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [listener])
            while not server.started:
                await anyio.sleep(0.02)
            bound = listener.getsockname()[1]
            # Read by scripts (and tests) that start the gateway on port 0.
            print(f"gatekeeper-mcp: serving http://{host}:{bound}/mcp", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gatekeeper-mcp",
        description="An MCP gateway: the tools of MCP servers, each call asked of Gatekeeper.",
    )
    parser.add_argument("--config", required=True, help="the gateway's TOML config file")
    parser.add_argument(
        "--http", metavar="PORT", type=int, help="serve streamable HTTP on PORT (0: any free)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address for --http")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="gatekeeper-mcp: %(message)s"
    )
    try:
        config = load(options.config)
    except ConfigError as error:
        print(f"gatekeeper-mcp: {error}", file=sys.stderr)
        return 2
    try:
        if options.http is not None:
            anyio.run(serve_http, config, options.host, options.http)
        else:
            anyio.run(serve_stdio, config)
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # noqa: BLE001 - one line, not a traceback, for an operator
        while len(getattr(error, "exceptions", ())) == 1:  # an exception group of one
            error = error.exceptions[0]
        print(f"gatekeeper-mcp: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
