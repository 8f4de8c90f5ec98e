"""An MCP gateway: every tool of any MCP server behind Gatekeeper's approvals.

    pip install "gatekeeper-client[mcp]"
    gatekeeper-mcp --config gateway.toml                 # serve over stdio (desktop clients)
    gatekeeper-mcp --config gateway.toml --http 8765     # serve streamable HTTP on /mcp

An MCP client connects to the gateway as to any MCP server. The gateway serves the tools,
resources and prompts of the upstream servers its config names (see `config`), and asks
Gatekeeper before forwarding each tool call (see `gateway`). Built on the official `mcp` SDK.
"""

try:
    import mcp  # noqa: F401
except ImportError as missing:  # the core needs nothing; only the gateway needs the SDK
    raise ImportError(
        'the MCP gateway needs the MCP SDK: pip install "gatekeeper-client[mcp]"'
    ) from missing

from .config import Config, ConfigError, Upstream, load
from .gateway import Gateway
from .serve import main, serve_http, serve_stdio

__all__ = [
    "Config",
    "ConfigError",
    "Gateway",
    "Upstream",
    "load",
    "main",
    "serve_http",
    "serve_stdio",
]
