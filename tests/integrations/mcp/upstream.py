"""The example's upstream MCP server, with what the gateway's tests need besides.

`db.drop` (policy blocks it), `report.fail` (answers an error), `report.die` (its process is
killed mid-call), a resource and a prompt (they pass through the gateway untouched).
Run as the example is: stdio by default, `--http PORT` for streamable HTTP.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

from mcp.server.mcpserver.exceptions import ToolError  # noqa: E402
from mcp_upstream import main, ran, server  # noqa: E402


@server.tool(name="db.drop")
def db_drop(table: str) -> str:
    """Drop a table."""
    ran("db.drop", {"table": table})
    return f"dropped {table}"


@server.tool(name="report.fail")
def report_fail(reason: str) -> str:
    """Always fails, with `reason`."""
    ran("report.fail", {"reason": reason})
    raise ToolError(f"report service down: {reason}")


@server.tool(name="report.die")
def report_die() -> str:
    """The server process is killed while this call runs."""
    ran("report.die", {})
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@server.resource("hr://handbook")
def handbook() -> str:
    """The HR handbook."""
    return "Be kind."


@server.prompt(name="welcome")
def welcome(name: str) -> str:
    """A welcome message for a new hire."""
    return f"Write a warm welcome for {name}."


if __name__ == "__main__":
    main()
