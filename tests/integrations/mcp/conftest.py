"""The MCP gateway against a live Gatekeeper: the official SDK as the agent's client, the
gateway as its own process (`python -m gatekeeper_client.mcp`), the upstream as another."""

import contextlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from django.contrib.auth.models import Group
from gatekeeper_client import GatekeeperClient
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from approvals.services.policies import policies_import
from approvals.services.service_accounts import service_account_create
from tests.client.conftest import agent_python, in_background  # noqa: F401 - shared fixtures
from tests.conftest import groups_named_by

UPSTREAM = Path(__file__).resolve().parent / "upstream.py"
WORKFLOW = "hr-onboarding"
OWNER = "it-approvers"

POLICIES = [
    # The tools' own annotations decide: readOnlyHint reaches the gate as a risk label.
    {"name": "mcp-read-only", "priority": 1, "match": {"labels_any": ["read_only"]},
     "effect": "allow"},
    {"name": "no-drops", "priority": 2, "match": {"tool": "db.drop"}, "effect": "block"},
    {"name": "iam-grants", "priority": 3, "match": {"tool": "iam.*"},
     "effect": "require_approval", "approvers": "it-approvers", "allow_edit": True},
    {"name": "reports", "priority": 4, "match": {"tool": "report.*"}, "effect": "allow"},
]  # fmt: skip


@pytest.fixture
def account(live_server, db):
    groups_named_by(*POLICIES)
    policies_import(documents=POLICIES, actor="test")
    Group.objects.get_or_create(name=OWNER)  # the owner the config names must exist (DESIGN 5)
    return service_account_create(name="mcp-gateway")


@pytest.fixture
def gk(live_server, account):
    return GatekeeperClient(live_server.url, account[1], backoff=0.01, timeout=10)


@pytest.fixture
def write_config(tmp_path, live_server, account):
    """A gateway config in front of the test upstream (stdio, or an HTTP URL)."""

    def write(*, thread_id="session", upstream_url=None, interval=1, extra="", token=None):
        if upstream_url:
            where = f'url = "{upstream_url}"'
        else:
            where = f'command = ["{sys.executable}", "{UPSTREAM}"]'
        path = tmp_path / "gateway.toml"
        path.write_text(
            f"""
[gatekeeper]
url = "{live_server.url}"
token = "{token or account[1]}"
workflow = "{WORKFLOW}"
owner = "{OWNER}"
thread_id = "{thread_id}"
progress_interval = {interval}

[[upstream]]
name = "hr"
{where}
{extra}
"""
        )
        return path

    return write


def gateway_command(config: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "gatekeeper_client.mcp", "--config", str(config), *more]


class Stderr:
    """A process's stderr, read in a thread: its lines, and a wait for one that matches."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process):
        for line in process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")


@pytest.fixture
def processes():
    """Start processes that are killed at the end of the test."""
    started = []

    def start(command: list[str]) -> tuple[subprocess.Popen, Stderr]:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        return process, Stderr(process)

    yield start
    for process in started:
        process.kill()
        process.wait(10)


@pytest.fixture
def http_upstream(processes):
    """The test upstream over streamable HTTP; its URL."""
    port = _free_port()
    _process, err = processes([sys.executable, str(UPSTREAM), "--http", str(port)])
    url = f"http://127.0.0.1:{port}/mcp"
    _wait_for_port(port)
    return url, err


@pytest.fixture(params=["stdio", "http"])
def connect(request, processes, tmp_path):
    """`connect(config)`: an async context manager for a ClientSession through the gateway,
    served over stdio (the client spawns it) or streamable HTTP (a gateway process of its own)."""
    transport = request.param

    @contextlib.asynccontextmanager
    async def open_session(config: Path):
        if transport == "stdio":
            params = StdioServerParameters(command=sys.executable, args=gateway_command(config)[1:])
            errlog = stack.enter_context(open(stderr_file, "a"))  # noqa: SIM115 - test's end
            streams = stdio_client(params, errlog=errlog)
        else:
            url = open_session.http_url(config)
            streams = streamable_http_client(url)
        async with streams as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session

    urls, logs = {}, []
    stack = contextlib.ExitStack()
    stderr_file = tmp_path / "gateway-stdio.err"

    def log() -> list[str]:
        """What the gateways (and the stdio upstreams they run) wrote on stderr so far."""
        lines = stderr_file.read_text().splitlines() if stderr_file.exists() else []
        return lines + [line for err in logs for line in err.lines]

    def http_url(config: Path) -> str:
        if config not in urls:
            _process, err = processes(gateway_command(config, "--http", "0"))
            logs.append(err)
            urls[config] = err.wait_for(r"serving (http://\S+)").group(1)
        return urls[config]

    open_session.http_url = http_url
    open_session.transport = transport
    open_session.log = log
    with stack:
        yield open_session


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def text_of(result) -> str:
    return " ".join(block.text for block in result.content if hasattr(block, "text"))


def run(scenario, *args, timeout: float = 90):
    """Run an async scenario to its end from a synchronous test (failing after `timeout`)."""

    async def bounded():
        with anyio.fail_after(timeout):
            return await scenario(*args)

    return anyio.run(bounded)
