#!/usr/bin/env python3
"""A small MCP server with two HR tools, to put the Gatekeeper MCP gateway in front of.

    python3 examples/mcp_upstream.py                # stdio (what the gateway's config runs)
    python3 examples/mcp_upstream.py --http 9000    # streamable HTTP on http://127.0.0.1:9000/mcp

`hr.lookup` reads an employee record (read-only); `iam.grant` gives a user a role
(destructive). Each tool prints `RAN <tool> <args as JSON with sorted keys>` on stderr (stdout
is the MCP channel on stdio) when it runs: what ran is exactly what this server received.
Needs the official MCP SDK: `pip install "gatekeeper-client[mcp]"` (or `pip install mcp`).
"""

import argparse
import json
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

EMPLOYEES = {7: {"id": 7, "name": "Jane Doe", "user": "jdoe", "department": "Engineering"}}

server = MCPServer("hr-tools", instructions="HR records and IAM grants.")


def ran(tool: str, args: dict) -> None:
    print(f"RAN {tool} {json.dumps(args, sort_keys=True)}", file=sys.stderr, flush=True)


@server.tool(name="hr.lookup", annotations=ToolAnnotations(read_only_hint=True))
def hr_lookup(employee_id: int) -> dict:
    """Look up an employee's record by id."""
    ran("hr.lookup", {"employee_id": employee_id})
    return EMPLOYEES.get(employee_id, {"id": employee_id, "error": "no such employee"})


@server.tool(
    name="iam.grant",
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
)
def iam_grant(user: str, role: str, scope: str = "global") -> str:
    """Give `user` the IAM role `role` (within `scope`)."""
    args = {"user": user, "role": role}
    if scope != "global":
        args["scope"] = scope
    ran("iam.grant", args)
    return f"granted {role} to {user} on {scope}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    options = parser.parse_args()
    if options.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=options.http)


if __name__ == "__main__":
    main()
