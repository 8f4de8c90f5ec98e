"""An MCP server (the official SDK's, over stdio) with the examples' two tools, for the Agents
SDK's MCP tests: `python mcp_server.py CALLS [--die-on-grant | --refuse-grant]`.

Each call is appended to the file CALLS as a JSON line `[tool, args]` before it answers: what
ran is exactly what this server received. With `--die-on-grant`, the process is killed while
`iam_grant` runs (after it recorded the call): the client never hears whether it happened.
With `--refuse-grant`, `iam_grant` answers an error (`isError`).
"""

import json
import os
import signal
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

CALLS, FLAGS = sys.argv[1], sys.argv[2:]
server = MCPServer("hr-tools")


def record(tool: str, args: dict) -> None:
    with open(CALLS, "a") as calls:
        calls.write(json.dumps([tool, args]) + "\n")


@server.tool()
def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    record("hr.lookup", {"employee_id": employee_id})
    return "Jane Doe"


@server.tool()
def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    record("iam.grant", {"user": user, "role": role})
    if "--die-on-grant" in FLAGS:
        os.kill(os.getpid(), signal.SIGKILL)
    if "--refuse-grant" in FLAGS:
        raise ToolError(f"IAM refused: {role} is not a role")
    return f"granted {role} to {user}"


if __name__ == "__main__":
    server.run()
