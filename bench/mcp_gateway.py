"""The latency the MCP gateway adds to an allowed tool call (issue 18).

    .venv/bin/python bench/mcp_gateway.py [--calls 300]

Makes its own database (gk_mcp_bench) on 127.0.0.1:5432 with one service account and a policy
that allows read-only tools, serves Gatekeeper with gunicorn (production settings, as
bench/run does), and times `hr.lookup` of examples/mcp_upstream.py from an official-SDK client
over stdio: first against the upstream directly, then through `gatekeeper-mcp` in front of it
(a gate check and an outcome report per call on top). Prints median and p99 of both, what the
gateway adds, and the ratio. Everything it starts is ended on the way out.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import CHILDREN, Server, admin_sql, product_env  # noqa: E402

BASE = Path(__file__).resolve().parent.parent
UPSTREAM = BASE / "examples" / "mcp_upstream.py"
DB = "gk_mcp_bench"
POLICY = {"name": "reads", "match": {"labels_any": ["read_only"]}, "effect": "allow"}


def gatekeeper(data_dir: Path) -> tuple[Server, str]:
    """A fresh database, an account and the policy; gunicorn serving it. (server, token)"""
    admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)', f'CREATE DATABASE "{DB}"')
    env = product_env(DB, data_dir)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from approvals.services.policies import policies_import
    from approvals.services.service_accounts import service_account_create

    call_command("migrate", verbosity=0)
    policies_import(documents=[POLICY], actor="bench")
    _account, token = service_account_create(name="mcp-bench")
    return Server("gunicorn-mcp", env, data_dir, workers=2, threads=4).start(), token


async def timed_calls(command: list[str], calls: int) -> list[float]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    with open(os.devnull, "w") as quiet:  # the upstream's RAN lines
        async with (
            stdio_client(params, errlog=quiet) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for _ in range(20):  # warm up: connections, imports, the first execution row
                await session.call_tool("hr.lookup", {"employee_id": 7})
            seconds = []
            for _ in range(calls):
                started = time.perf_counter()
                result = await session.call_tool("hr.lookup", {"employee_id": 7})
                seconds.append(time.perf_counter() - started)
                assert not result.is_error, result
            return seconds


def figures(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server, token = gatekeeper(work)
        try:
            config = work / "gateway.toml"
            config.write_text(
                f'[gatekeeper]\nurl = "{server.url}"\ntoken = "{token}"\nworkflow = "bench"\n'
                f'[[upstream]]\nname = "hr"\ncommand = ["{sys.executable}", "{UPSTREAM}"]\n'
            )
            direct = anyio.run(timed_calls, [sys.executable, str(UPSTREAM)], options.calls)
            gateway = [sys.executable, "-m", "gatekeeper_client.mcp", "--config", str(config)]
            through = anyio.run(timed_calls, gateway, options.calls)
        finally:
            server.stop()
            CHILDREN.end_all()
            admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    (d50, d99), (g50, g99) = figures(direct), figures(through)
    print(f"calls {options.calls} each, hr.lookup over stdio, gunicorn 2x4 on 127.0.0.1")
    print(f"direct   median {d50:.2f} ms  p99 {d99:.2f} ms")
    print(f"gateway  median {g50:.2f} ms  p99 {g99:.2f} ms")
    print(f"added    median {g50 - d50:.2f} ms  p99 {g99 - d99:.2f} ms")
    print(f"ratio    median {g50 / d50:.1f}x  p99 {g99 / d99:.1f}x")


if __name__ == "__main__":
    main()
