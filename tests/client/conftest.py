"""The client against a live server: real HTTP, real transactions, reviewers in other threads."""

import glob
import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from gatekeeper_client import GatekeeperClient

from approvals.models import PausePacket
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from gatekeeper.bootstrap import _version_of

CLIENT = Path(__file__).resolve().parents[2] / "client"
CONTEXT = [{"name": "employee_record", "value": {"id": 7}, "observed_at": "2026-11-22T09:00:00Z"}]


@pytest.fixture
def gk_account(live_server, db):
    return service_account_create(name="orchestrator")


@pytest.fixture
def gk(live_server, gk_account):
    """A client for the orchestrator service account, with short backoffs."""
    return GatekeeperClient(live_server.url, gk_account[1], backoff=0.01, timeout=10)


def step(**overrides) -> dict:
    """Keyword arguments of check() / run_step() for one onboarding step."""
    options = {
        "thread_id": "onboard-42",
        "workflow": "hr-onboarding",
        "step_index": 2,
        "tool": "iam.grant",
        "context": CONTEXT,
    }
    options.update(overrides)
    return options


class Tool:
    """A tool that records the args it ran with."""

    def __init__(self, result="done", error=None):
        self.calls = []
        self.result = result
        self.error = error
        self.__name__ = "set_privileges"

    def __call__(self, **args):
        self.calls.append(args)
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def in_background():
    """Run reviewer actions in threads (as another process would); their errors fail the test."""
    threads, errors = [], []

    def run(action, *, delay=0.0):
        def target():
            try:
                time.sleep(delay)
                action()
            except BaseException as error:  # reported when the test ends
                errors.append(error)
            finally:
                connection.close()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        threads.append(thread)

    yield run
    for thread in threads:
        thread.join(15)
    assert not errors, errors


def next_packet(thread_id: str, status: str = "pending", *, exclude=(), timeout=15) -> PausePacket:
    """Wait for a packet of the execution in `status` (for reviewer threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        packet = (
            PausePacket.objects.filter(execution__thread_id=thread_id, status=status)
            .exclude(id__in=list(exclude))
            .order_by("created_at")
            .first()
        )
        if packet is not None:
            return packet
        time.sleep(0.05)
    raise AssertionError(f"no {status} packet of {thread_id} within {timeout} s")


def stale_then_approve(thread_id: str, user) -> PausePacket:
    """Let the step's pending packet go stale, then approve it: it goes to re_review."""
    packet = next_packet(thread_id)
    PausePacket.objects.filter(id=packet.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    packet_approve(packet_id=packet.id, user=user)
    return packet


class FlakyProxy:
    """An HTTP server on 127.0.0.1 that misbehaves by script, then forwards to the live server.

    Each request takes the next word of `script` (then `forward` when it runs out):
    `drop` closes the connection without an answer, `503` answers unavailable (`busy`: with
    Retry-After: 2), `lost` forwards
    the request but drops the answer (the server acted; the client never hears), `forward`
    forwards and relays the answer.
    """

    def __init__(self, target: str, script=()):
        self.target = urlsplit(target)
        self.script = list(script)
        self.seen: list[str] = []
        self.paths: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.handle(self)

            def do_POST(self):
                proxy.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, request) -> None:
        word = self.script.pop(0) if self.script else "forward"
        self.seen.append(word)
        self.paths.append(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        if word == "drop":
            request.close_connection = True
            return
        if word in ("503", "busy"):
            payload = json.dumps(
                {"error": {"code": "unavailable", "message": "restarting", "details": {}}}
            ).encode()
            request.send_response(503)
            if word == "busy":
                request.send_header("Retry-After", "2")
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=70)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "content-type", "accept")
        }
        upstream.request(request.command, request.path, body=body, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        upstream.close()
        if word == "lost":
            request.close_connection = True
            return
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_proxy(live_server):
    proxies = []

    def make(script=()):
        proxy = FlakyProxy(live_server.url, script)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def _oldest_supported_python() -> str:
    pyenv = os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3")
    found = [shutil.which("python3.10"), *sorted(glob.glob(pyenv))]
    # A pyenv shim is found even when it cannot run that version: ask each.
    runs = (python for python in found if python and _version_of(python) == (3, 10))
    return next(runs, sys.executable)


@pytest.fixture(scope="session")
def agent_python(tmp_path_factory) -> Path:
    """An agent's own python: client/, copied out of the repository so that nothing of the
    server is within reach, installed into an empty virtualenv (not even pip) of the oldest
    Python the client supports (3.10) when this machine has one."""
    root = tmp_path_factory.mktemp("agent")
    source = shutil.copytree(
        CLIENT, root / "client", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    venv = root / "venv"
    subprocess.run([_oldest_supported_python(), "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
        + ["--disable-pip-version-check", source],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    return python


def run_as_agent(python: Path, code: str, **env: str) -> str:
    """Run `code` with the agent's python; its stdout, stripped. It must exit 0."""
    # -I: no PYTHONPATH, no user site, not the working directory: only what the venv holds.
    result = subprocess.run(
        [python, "-I", "-c", code],
        cwd=python.parent,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
