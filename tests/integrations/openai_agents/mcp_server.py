"""An MCP server (the official SDK's, over stdio) with the examples' two tools, for the Agents
SDK's MCP tests: `python mcp_server.py CALLS [--die-on-grant]`.

Each call is appended to the file CALLS as a JSON line `[tool, args]` before it answers: what
ran is exactly what this server received. With `--die-on-grant`, the process is killed while
`iam_grant` runs (after it recorded the call): the client never hears whether it happened.
"""

import json
import os
import signal
import sys

from mcp.server.mcpserver import MCPServer

CALLS, DIE_ON_GRANT = sys.argv[1], "--die-on-grant" in sys.argv[2:]
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
    if DIE_ON_GRANT:
        os.kill(os.getpid(), signal.SIGKILL)
    return f"granted {role} to {user}"


if __name__ == "__main__":
    server.run()
