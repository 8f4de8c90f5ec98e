#!/usr/bin/env python3
"""An MCP agent whose tools sit behind Gatekeeper's MCP gateway.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/mcp_agent.py [--thread-id ID]

It starts three things, as a real deployment would have them: the upstream MCP server
(examples/mcp_upstream.py, offering `hr.lookup` and `iam.grant`), the gateway in front of it
(`python -m gatekeeper_client.mcp`, workflow `hr-onboarding`), and an MCP client of the
official SDK whose scripted "model" calls `hr.lookup` with {"employee_id": 7}, then
`iam.grant` with {"user": "jdoe", "role": "admin"}, then answers.

Printed on stdout: `RAN <tool> <args>` by the upstream when a tool runs (what it received,
a reviewer's edits included), `DENIED <tool> <reason>` when the gateway refuses a call, and
`DONE` at the end. While a call waits for a human, the gateway's progress notifications are
shown on stderr. Needs `pip install "./client[mcp]"`.
"""

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
WORKFLOW = "hr-onboarding"
OWNER = "it-approvers"

# The scripted model: the tool calls it makes, in order, then its answer.
SCRIPT = [("hr.lookup", {"employee_id": 7}), ("iam.grant", {"user": "jdoe", "role": "admin"})]


def gateway_config(thread_id: str) -> str:
    """The gateway's config: Gatekeeper from the environment, the example upstream on stdio."""
    upstream = json.dumps([sys.executable, str(HERE / "mcp_upstream.py")])
    return f"""
[gatekeeper]
url_env = "GATEKEEPER_URL"
token_env = "GATEKEEPER_TOKEN"
workflow = "{WORKFLOW}"
owner = "{OWNER}"
thread_id = "{thread_id}"
progress_interval = 5

[[upstream]]
name = "hr"
command = {upstream}
"""


async def on_progress(progress: float, total: float | None, message: str | None) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


async def run_model(config: Path) -> str:
    gateway = StdioServerParameters(
        command=sys.executable,
        args=["-m", "gatekeeper_client.mcp", "--config", str(config)],
        env=dict(os.environ),
    )
    # The gateway's stderr (and the upstream's, where RAN lines go) joins our stdout.
    async with (
        stdio_client(gateway, errlog=sys.stdout) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        offered = {tool.name for tool in (await session.list_tools()).tools}
        done = []
        for tool, args in SCRIPT:
            if tool not in offered:
                raise SystemExit(f"the gateway does not offer {tool}")
            result = await session.call_tool(tool, args, progress_callback=on_progress)
            text = " ".join(block.text for block in result.content if hasattr(block, "text"))
            if result.is_error:
                print(f"DENIED {tool} {text}", flush=True)
            else:
                done.append(tool)
        return f"done: {', '.join(done) or 'nothing'} ran"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thread-id", default=f"mcp-onboard-{uuid.uuid4().hex[:8]}")
    options = parser.parse_args()
    if not (os.environ.get("GATEKEEPER_URL") and os.environ.get("GATEKEEPER_TOKEN")):
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "gateway.toml"
        config.write_text(gateway_config(options.thread_id))
        answer = anyio.run(run_model, config)
    print(f"model: {answer}", file=sys.stderr)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
