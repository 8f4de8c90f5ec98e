import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.test.utils import override_settings
from django.urls import Resolver404, resolve
from kombu.utils.url import maybe_sanitize_url

from approvals.demo import (
    DEMO_PASSWORD,
    SERVICE_ACCOUNT,
    USERS,
    DemoSeedFailed,
    SeedResult,
    demo_seed,
)
from approvals.management.commands.seed_demo import report_seed
from approvals.models import ServiceAccount
from approvals.services.service_accounts import (
    service_account_create,
    service_account_rotate_token,
)
from gatekeeper.env import env_str

HOST = "127.0.0.1"
AGENT_ACCOUNT = "example-agent"
AGENT_SCRIPT = "examples/hr_onboarding_agent.py"
AGENT_EVERY_SECONDS = 120
AGENT_MAX_RUNNING = 3
CELERY_APP = "gatekeeper.celery"
# How long the web server may take to accept connections before the agent starts anyway.
SERVER_START_SECONDS = 60
STOP_SECONDS = 5


class Command(BaseCommand):
    help = (
        "Try Gatekeeper: migrate the database, load the demo data, and serve it on "
        f"http://{HOST}:8000/ with uvicorn on gatekeeper.asgi (long-polls wait on its event "
        "loop, as in production; docs/deployment.md), beside a Celery worker and "
        "beat (email, webhooks, reminders, expiry) and an example agent that starts an HR "
        "onboarding every few minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on (8000)")
        parser.add_argument(
            "--no-serve", action="store_true", help="Set up the database and demo data only"
        )
        parser.add_argument(
            "--no-agent",
            action="store_true",
            help="Serve without the example HR-onboarding agent that sends packets",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Serve without the Celery worker and beat (then `manage.py sweep` does their "
            "work, once per run)",
        )

    def handle(
        self,
        *args,
        port: int,
        no_serve: bool,
        no_agent: bool,
        no_worker: bool,
        verbosity: int,
        **options,
    ):
        if not 0 < port < 65536:
            raise CommandError(f"--port must be from 1 to 65535, not {port}")
        base_url = f"http://{HOST}:{port}"
        # Links in stored API answers and emails must point at the server this demo starts.
        # Settings are read from the environment once; when GATEKEEPER_BASE_URL is not set,
        # the demo's own port is the truthful value for everything this process does.
        if env_str("GATEKEEPER_BASE_URL") is None:
            overrides = override_settings(GATEKEEPER_BASE_URL=base_url)
        else:
            overrides = nullcontext()
        with overrides:
            self.stdout.write("Preparing the database ...")
            call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0))
            try:
                result = demo_seed()
            except DemoSeedFailed as error:
                raise CommandError(f"{error} (nothing was written)") from error
            if verbosity > 1:
                report_seed(self.stdout, result)
            agent = not no_serve and not no_agent
            worker = not no_serve and not no_worker
            # Rotated on every start: an agent left from an earlier run stops being let in.
            agent_token = example_agent_token() if agent else None
            self.stdout.write(
                self.banner(
                    base_url,
                    result,
                    serving=not no_serve,
                    agent=agent_token is not None,
                    worker=worker,
                )
            )
            if not settings.DEBUG:
                self.stderr.write(
                    "DEBUG is off: the server will not serve static files, and "
                    "ALLOWED_HOSTS must include 127.0.0.1. Unset DEBUG for the demo."
                )
            if agent and agent_token is None:
                self.stderr.write(
                    f"Service account {AGENT_ACCOUNT} is revoked: the example agent stays off."
                )
        if no_serve:
            return
        connections.close_all()
        self.stdout.flush()
        sys.stdout.flush()
        # The server is uvicorn on the production ASGI entry, reading this environment, so its
        # settings come from where every other process gets them.
        env = dict(os.environ)
        if env_str("GATEKEEPER_BASE_URL") is None:
            env["GATEKEEPER_BASE_URL"] = base_url
        server = [sys.executable, "-m", "uvicorn", "gatekeeper.asgi:application"]
        server += ["--host", HOST, "--port", str(port), "--app-dir", str(settings.BASE_DIR)]
        agent_argv, agent_env = (None, None)
        if agent_token is not None:
            agent_argv, agent_env = agent_command(base_url, agent_token, env)
        code = serve(
            server,
            env,
            agent_argv,
            agent_env,
            address=(HOST, port),
            stderr=self.stderr,
            background=celery_commands() if worker else {},
        )
        if code:
            raise CommandError(f"the web server stopped with exit code {code}")

    def banner(
        self, base_url: str, result: SeedResult, *, serving: bool, agent: bool, worker: bool
    ) -> str:
        width = max(len(name) for name in USERS)
        lines = [
            "",
            "=" * 72,
            "  Gatekeeper demo",
            "",
            f"  Admin:      {base_url}/admin/",
        ]
        if _resolves("/approvals/"):
            lines.append(f"  Reviewers:  {base_url}/approvals/")
        lines += ["", "  Log in as:"]
        lines += [f"    {name:<{width}}  {role}" for name, (_groups, role) in USERS.items()]
        lines += ["", f"  Password:   {DEMO_PASSWORD}   (every demo user, as first created)"]
        if result.users_existing:
            lines.append("              users already present kept their passwords")
        if result.token:
            lines += [
                "",
                f"  API token of service account {SERVICE_ACCOUNT} (shown once, save it now):",
                f"token={result.token}",
            ]
        else:
            lines += [
                "",
                f"  Service account {SERVICE_ACCOUNT} exists: its token was shown once, when made.",
                "  For another: python3 manage.py create_service_account NAME",
            ]
        if agent:
            lines += [
                "",
                f"  Example agent ({AGENT_SCRIPT}, service account {AGENT_ACCOUNT}):",
                f"  starts an HR onboarding now and every {AGENT_EVERY_SECONDS} s; its packets",
                "  arrive in the reviewers' queue and its steps print below (--no-agent: off).",
            ]
        lines += [""]
        if worker:
            lines += [
                "  Background: a Celery worker and beat send email and webhooks, remind,",
                "              escalate and expire (--no-worker: off).",
                f"  Broker:     {broker_description()}",
            ]
        elif serving:
            lines += [
                "  Background: off. Nothing is sent, reminded or expired until you run",
                "              python3 manage.py sweep",
            ]
        lines.append(f"  Email:      {email_destination()}")
        lines += [""]
        lines += ["  Stop with Ctrl-C."] if serving else ["  Serve it with: python3 manage.py demo"]
        lines += ["=" * 72, ""]
        return "\n".join(lines)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def example_agent_token() -> str | None:
    """A new token for the example agent's service account (made on first use).

    None when an admin revoked the account: the demo respects that and starts no agent.
    """
    account = ServiceAccount.objects.filter(name=AGENT_ACCOUNT).first()
    if account is None:
        return service_account_create(name=AGENT_ACCOUNT)[1]
    if not account.is_active:
        return None
    return service_account_rotate_token(account=account)


def agent_command(base_url: str, token: str, env: dict) -> tuple[list[str], dict]:
    """The example agent's command line and environment: the token travels in the latter."""
    argv = [
        sys.executable,
        str(settings.BASE_DIR / AGENT_SCRIPT),
        "--loop",
        str(AGENT_EVERY_SECONDS),
        "--max-running",
        str(AGENT_MAX_RUNNING),
    ]
    agent_env = {
        # The server's key (from .data/local.env on a development machine) is none of its business.
        **{name: value for name, value in env.items() if name != "SECRET_KEY"},
        "GATEKEEPER_URL": base_url,
        "GATEKEEPER_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    return argv, agent_env


def celery_commands() -> dict[str, list[str]]:
    """A worker and the one beat, on the broker the settings name (by default a folder queue).

    Two processes rather than `worker -B`, as in production; `solo` because one process that
    handles one task at a time is all a demo needs, and it leaves no pool children behind.
    """
    schedule = settings.DATA_DIR / "celery" / "beat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    celery = [sys.executable, "-m", "celery", "-A", CELERY_APP]
    return {
        "Celery worker": [*celery, "worker", "--pool=solo", "--loglevel=INFO"],
        "Celery beat": [*celery, "beat", "--schedule", str(schedule), "--loglevel=INFO"],
    }


def broker_description() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
        return f"a folder queue in {_shown_path(folder)} (no server)"
    return maybe_sanitize_url(url)


def email_destination() -> str:
    mailer = settings.MAILERS["default"]
    backend = mailer["BACKEND"]
    if backend.endswith("filebased.EmailBackend"):
        folder = mailer.get("OPTIONS", {}).get("file_path", "")
        return f"written to files in {_shown_path(folder)}, one per message"
    if backend.endswith("console.EmailBackend"):
        return "printed by the Celery worker below"
    if backend.endswith("smtp.EmailBackend"):
        options = mailer.get("OPTIONS", {})
        return f"sent through SMTP at {options.get('host')}:{options.get('port')}"
    return f"sent by {backend}"


def _shown_path(path) -> str:
    """Relative to the project when inside it: shorter, and what the README names."""
    try:
        return str(Path(path).resolve().relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)


class _Stop(Exception):
    """SIGINT or SIGTERM reached the demo."""


def _stop_signal(signum, frame):
    raise _Stop(signum)


def _die_with_parent():
    """Linux: a child gets SIGTERM when the demo dies, even by SIGKILL, so none outlives it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def in_child():
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before prctl took effect
            os._exit(1)

    return in_child


def _spawn(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent())  # noqa: S603 - our own scripts


def _stop(children: list[subprocess.Popen]) -> None:
    """Ask every child to stop at once, then kill whichever has not within STOP_SECONDS."""
    running = [child for child in children if child.poll() is None]
    for child in running:
        child.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for child in running:
        try:
            child.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _listening(address: tuple[str, int], server: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(address, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def serve(
    server_argv: list[str],
    env: dict,
    agent_argv: list[str] | None,
    agent_env: dict | None,
    *,
    address: tuple[str, int],
    stderr,
    background: dict[str, list[str]] | None = None,
) -> int | None:
    """Run the background processes, the web server and, once it accepts connections, the agent.

    `background` names commands that run beside the server in its environment (the Celery
    worker and beat). Returns the server's exit code when it stops by itself, None when the
    demo was stopped (Ctrl-C, SIGTERM). Any other child stopping is reported and leaves the
    server running. Every child is stopped on the way out, whatever the way out is.
    """
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, _stop_signal) for signum in stop_signals}
    others: dict[str, subprocess.Popen] = {}
    server = None
    try:
        for name, argv in (background or {}).items():
            others[name] = _spawn(argv, env)
        server = _spawn(server_argv, env)
        if agent_argv is not None and _listening(address, server, SERVER_START_SECONDS):
            others["example agent"] = _spawn(agent_argv, agent_env)
        while True:
            try:
                return server.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            for name, child in list(others.items()):
                if child.poll() is not None:
                    stderr.write(f"The {name} stopped (exit code {child.returncode}).")
                    del others[name]
    except _Stop:
        return None
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave a child behind.
        for signum in stop_signals:
            signal.signal(signum, signal.SIG_IGN)
        # The server last: the agent, still running, is answered while it shuts down.
        _stop(list(reversed(others.values())))
        if server is not None:
            _stop([server])
        for signum, handler in previous.items():
            signal.signal(signum, handler)
