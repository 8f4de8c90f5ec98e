"""Real Gatekeeper processes for the fault tests: Celery workers and gunicorn web nodes.

Each child runs in its own session (process group), logs to a file the test can read, and is
ended by its own id: its stop signal, then SIGKILL if it does not stop in time.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, every=0.05):
    """Poll predicate until it returns something truthy, and return that; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django's connection uses (the test database)."""
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "127.0.0.1"
    query = ""
    if host.startswith("/"):  # a socket directory, as the embedded server uses
        host, query = "", "?host=" + quote(settings_dict["HOST"], safe="")
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(settings_dict['NAME'], safe='')}{query}"


class ChildProcess:
    """A Gatekeeper process started for a test, its output in `<log_dir>/<name>.log`."""

    stop_signal = signal.SIGTERM

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, signum: int) -> None:
        # Only while the leader is unreaped: its id cannot have been given to anyone else.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)  # the group this child leads: its own children

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no acknowledgements, nothing flushed."""
        self.send(signal.SIGKILL)
        self.process.wait(timeout=10)

    def is_ready(self) -> bool:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30) -> None:
        """Poll for the sign of readiness (a log line, an answer), not a fixed sleep."""

        def check():
            if not self.alive:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}")
            return self.is_ready()

        try:
            wait_until(check, timeout=timeout, what=f"{self.name} to be ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- {self.name} log ---\n{self.log()}") from None


def stop_all(children: list[ChildProcess], grace: float = 5) -> None:
    """Ask every child to stop at once, then SIGKILL whichever has not within `grace` seconds."""
    for child in children:
        child.send(child.stop_signal)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()


class CeleryWorker(ChildProcess):
    """`celery worker --pool=solo -Q celery`: one task at a time, in the main process."""

    # Cold shutdown: the test is over, and what the worker holds is flushed with its Redis db.
    stop_signal = signal.SIGQUIT

    def __init__(self, name: str, env: dict, log_dir: Path):
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gatekeeper.celery",
            "worker",
            "--pool=solo",
            "-Q",
            "celery",
            "-n",
            f"{name}@%h",
            "--loglevel=INFO",
            # No chatter with other workers: quicker start, and nothing else to wait for.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        super().__init__(name, argv, env, log_dir)

    def is_ready(self) -> bool:
        log = self.log()
        return f"{self.name}@" in log and " ready." in log


class WebNode(ChildProcess):
    """gunicorn with gthread workers (or with `asgi`, uvicorn workers serving gatekeeper.asgi),
    as docs/deployment.md runs it, behind a pretend load balancer: it ends TLS and says so in
    X-Forwarded-Proto, which `request` adds.
    """

    stop_signal = signal.SIGQUIT  # quick shutdown: no request is left to finish

    def __init__(
        self, name: str, env: dict, log_dir: Path, threads: int = 4, asgi=False, graceful=2
    ):
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            f"--bind=127.0.0.1:{self.port}",
            "--workers=1",
            f"--graceful-timeout={graceful}",
            "--no-control-socket",  # two nodes on one machine would share its default path
        ]
        if asgi:  # the long-poll on an event loop (docs/deployment.md)
            argv += ["gatekeeper.asgi:application", "--worker-class=uvicorn_worker.UvicornWorker"]
            env = {**env, "GATEKEEPER_ASGI_THREADS": str(threads)}
        else:
            argv += ["gatekeeper.wsgi:application", "--worker-class=gthread"]
            argv.append(f"--threads={threads}")
        env = {**env, "GATEKEEPER_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
        super().__init__(name, argv, env, log_dir)

    def request(self, method: str, path: str, *, body: bytes | None = None, headers=None):
        """One request as the load balancer forwards it: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                method, path, body=body, headers={"X-Forwarded-Proto": "https", **(headers or {})}
            )
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def api(self, method: str, path: str, token: str, payload: dict | None = None):
        """One JSON API call with the service account's bearer token: (status, decoded body)."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps(payload).encode() if payload is not None else None
        status, _headers, raw = self.request(method, path, body=body, headers=headers)
        return status, json.loads(raw)

    def is_ready(self) -> bool:
        """The load balancer's health check: the login page answers 200."""
        try:
            return self.request("GET", "/accounts/login/")[0] == 200
        except OSError:
            return False
