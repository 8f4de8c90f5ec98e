"""bench/run: Gatekeeper against the physical limit of this machine (issue 8).

Makes its own database (gk_bench, or gk_bench_smoke for --smoke) on the machine's PostgreSQL at
127.0.0.1:5432, fills it in bulk, starts gunicorn with production settings, drives it from a
separate load-generator process (bench/load.py) and from pgbench, and prints one line per
figure: `ratio NAME VALUE TARGET` (holds when VALUE >= TARGET) or `limit NAME VALUE TARGET`
(holds when VALUE <= TARGET), or `skip NAME (why)`. Writes bench/RESULTS.md (not for --smoke).

Every process it starts (gunicorn, pgbench, load generators, worker processes) is in its own
process group and is ended on the way out, whatever happened. Traffic goes to 127.0.0.1 only.
"""

import argparse
import atexit
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import waiters

BENCH = Path(__file__).resolve().parent
BASE = BENCH.parent
VENV_BIN = BASE / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
ALLOWED_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Sizes:
    open_packets: int
    packet_executions: int
    audit_events: int
    timeline_steps: int  # two record events per step
    gate_seconds: float  # per side, split over rounds
    rounds: int
    p99_seconds: float
    p99_rate: float
    page_requests: int
    decide_seconds: float
    race_packets: int
    race_seconds: float
    race_clients: int
    pg_seconds: float
    warmup_seconds: float = 3.0
    page_seconds: float = 45.0
    export_samples: int = 3  # of each side, HTTP and COPY taking turns to go first


MODES = {
    "smoke": Sizes(
        open_packets=500,
        packet_executions=50,
        audit_events=5_000,
        timeline_steps=100,
        gate_seconds=1.0,
        rounds=1,
        p99_seconds=1.0,
        p99_rate=50,
        page_requests=3,
        decide_seconds=1.0,
        race_packets=20,
        race_seconds=1.0,
        race_clients=4,
        pg_seconds=1.0,
        warmup_seconds=0.5,
        export_samples=1,
    ),
    "quick": Sizes(
        open_packets=100_000,
        packet_executions=1_000,
        audit_events=1_000_000,
        timeline_steps=2_500,
        gate_seconds=20.0,
        rounds=2,
        p99_seconds=15.0,
        p99_rate=200,
        page_requests=60,
        decide_seconds=10.0,
        race_packets=500,
        race_seconds=10.0,
        race_clients=32,
        pg_seconds=10.0,
    ),
    "full": Sizes(
        open_packets=100_000,
        packet_executions=1_000,
        audit_events=1_000_000,
        timeline_steps=2_500,
        gate_seconds=60.0,
        rounds=3,
        p99_seconds=60.0,
        p99_rate=200,
        page_requests=200,
        decide_seconds=30.0,
        race_packets=500,
        race_seconds=10.0,
        race_clients=32,
        pg_seconds=30.0,
        export_samples=5,
    ),
}

# --- processes -----------------------------------------------------------------------------


class Children:
    """Every process bench/run starts, each leading its own process group, ended on exit."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []

    def spawn(self, argv, **kwargs) -> subprocess.Popen:
        # Our own fixed argv lists (pgbench, gunicorn, psql, this venv's python).
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)  # noqa: S603
        self.processes.append(process)
        return process

    def end(self, process: subprocess.Popen, grace: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        # The group may outlive its leader (gunicorn workers): end whatever is left of it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=5)
        if process in self.processes:
            self.processes.remove(process)

    def end_all(self) -> None:
        for process in list(reversed(self.processes)):
            self.end(process, grace=5.0)


CHILDREN = Children()


def _on_signal(signum, _frame):
    raise SystemExit(f"bench/run: stopped by signal {signum}")


def run_child(argv, *, env, timeout: float, stdin: str | None = None) -> tuple[int, str, str]:
    """Run a child to its end (bounded by timeout), in its own group; (code, stdout, stderr)."""
    process = CHILDREN.spawn(
        argv,
        env=env,
        cwd=BASE,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        CHILDREN.end(process, grace=2)
        what = " ".join(argv[:2])
        raise RuntimeError(f"{what} took over {timeout} s") from None
    CHILDREN.end(process)
    return process.returncode, out, err


def load(job: dict, *, env, timeout: float) -> dict:
    """One job of bench/load.py, the separate load-generator process."""
    code, out, err = run_child(
        [PYTHON, str(BENCH / "load.py")], env=env, timeout=timeout, stdin=json.dumps(job)
    )
    if code != 0:
        raise RuntimeError(f"load.py {job['kind']} failed ({code}): {err.strip()[-2000:]}")
    return json.loads(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ALLOWED_HOST, 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with production settings (bench.settings adds only the floor's URL)."""

    def __init__(self, name: str, env: dict, log_dir: Path, *, workers: int, threads: int):
        self.name = name
        self.port = free_port()
        self.url = f"http://{ALLOWED_HOST}:{self.port}"
        self.workers = workers
        self.threads = threads
        self.log_path = log_dir / f"{name}.log"
        self.argv = [
            str(VENV_BIN / "gunicorn"),
            "gatekeeper.wsgi:application",
            f"--bind={ALLOWED_HOST}:{self.port}",
            "--worker-class=gthread",
            f"--workers={workers}",
            f"--threads={threads}",
            "--timeout=300",
            "--graceful-timeout=5",
            "--backlog=2048",
        ]
        self.env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "GATEKEEPER_BENCH_FLOOR": "1",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        log = open(self.log_path, "w")  # noqa: SIM115 (the child writes it until it ends)
        self.process = CHILDREN.spawn(
            self.argv, env=self.env, cwd=BASE, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        import urllib.request

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200 and len(self.worker_pids()) == self.workers:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer: {self.log_path.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.process is not None:
            CHILDREN.end(self.process)
            self.process = None


# --- database ------------------------------------------------------------------------------


def admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement)


def database_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def product_env(db: str, data_dir: Path) -> dict:
    """The production environment: DEBUG off, a secret key, one allowed host."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEKEEPER_", "DJANGO_", "CELERY_", "EMAIL_", "SECURE_"))
        and key not in ("DEBUG", "DATABASE_URL", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=ALLOWED_HOST,
        DATABASE_URL=database_url(db),
        GATEKEEPER_DATA_DIR=str(data_dir),
        GATEKEEPER_BASE_URL=f"http://{ALLOWED_HOST}",
        DJANGO_SETTINGS_MODULE="gatekeeper.settings",
        PYTHONPATH=str(BASE),
    )
    settings_text = (BASE / "gatekeeper" / "settings.py").read_text()
    # Plain HTTP on 127.0.0.1: no TLS in front, so no redirect to https.
    if "SECURE_SSL_REDIRECT" in settings_text:
        env["SECURE_SSL_REDIRECT"] = "false"
    return env


# --- pgbench -------------------------------------------------------------------------------


def pgbench(db: str, script: Path, *, clients: int, defines: dict, seconds=None, transactions=None):
    argv = [
        "pgbench",
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-n",
        # Django's psycopg backend binds on the client and sends simple queries; the scripts
        # group statements into the round trips the product makes.
        "-M",
        "simple",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-f",
        str(script),
    ]
    for key, value in defines.items():
        argv += ["-D", f"{key}={value}"]
    if seconds is not None:
        argv += ["-T", str(int(max(1, seconds)))]
    else:
        argv += ["-t", str(transactions)]
    argv.append(db)
    budget = (seconds or 0) + 300
    code, out, err = run_child(argv, env=dict(os.environ), timeout=budget)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if code != 0 or match is None or "aborted" in err + out:
        raise RuntimeError(f"pgbench failed ({code}): {err.strip()[-2000:]} {out[-1000:]}")
    return {
        "tps": float(match.group(1)),
        "failed": int(failed.group(1)) if failed else 0,
        "argv": " ".join(argv[argv.index("-n") :]),
        "latency": re.search(r"latency average = ([0-9.]+ ms)", out).group(1),
    }


# --- figures -------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    kind: str  # ratio | limit
    value: float | None
    target: float
    method: str
    details: str = ""
    skipped: str = ""

    @property
    def holds(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.target if self.kind == "ratio" else self.value <= self.target

    def line(self) -> str:
        if self.skipped:
            return f"skip {self.name} ({self.skipped})"
        return f"{self.kind} {self.name} {fmt(self.value)} {fmt(self.target)}"


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


ORDER = [
    "gate_vs_floor",
    "gate_vs_pg",
    "gate_p99_ms",
    "decide_vs_pg",
    "queue_queries",
    "queue_p95_ms",
    "timeline_p95_ms",
    "export_vs_copy",
    "export_peak_rss_mb",
    "verify_rows_per_s",
    "sweep_100k_s",
    "replay_100k_s",
    "race_duplicates",
]
ORDER += waiters.FIGURES

# Present in the gate phase (issue 20): each matches every bench check, as a shadow policy being
# watched on live traffic would, so every check stores three would-be answers.
SHADOW_POLICIES = [
    {"name": "shadow-block-bench", "priority": 5, "match": {"tool": "bench.*"}, "effect": "block"},
    {
        "name": "shadow-ask-risky",
        "priority": 6,
        "match": {"workflow": "bench-*", "min_risk": 0.05},
        "effect": "require_approval",
    },
    {
        "name": "shadow-ask-steps",
        "priority": 7,
        "match": {"conditions": [{"path": "n", "op": "gte", "value": 0}]},
        "effect": "require_approval",
    },
]
# What replay_100k_s replays over the bulk checks: globs, a risk threshold, conditions.
REPLAY_POLICIES = [
    {
        "name": "iam-privileged",
        "priority": 10,
        "match": {"workflow": "wf-*", "tool": "iam.*", "min_risk": 0.5},
        "effect": "require_approval",
    },
    {
        "name": "crm-small",
        "priority": 20,
        "match": {"tool": "crm.*", "conditions": [{"path": "record", "op": "lt", "value": 50000}]},
        "effect": "allow",
    },
    {"name": "mail-ok", "priority": 30, "match": {"tool": "mail.send"}, "effect": "allow"},
    {
        "name": "db-first",
        "priority": 40,
        "match": {
            "tool": "db.*",
            "conditions": [{"path": "record", "op": "in", "value": [0, 4, 8]}],
        },
        "effect": "block",
    },
]


class Bench:
    def __init__(self, mode: str, db: str, keep: bool, only: set[str] | None = None):
        self.mode = mode
        self.only = only or set()
        self.sizes = MODES[mode]
        self.db = db
        self.keep = keep
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []
        # The gate phase runs once per count, in this order (ascending: policies stay once made).
        self.shadow_policies = [len(SHADOW_POLICIES)]
        self.gate_tag = ""
        self.timings: dict[str, float] = {}
        self.work = Path(tempfile.mkdtemp(prefix="gk_bench_"))
        self.env = product_env(db, self.work / "data")
        self.cpus = os.cpu_count() or 1
        # gthread, as docs/deployment.md and the multi-node tests run it: one process per core
        # and a thread more, a few threads each.
        self.workers = 2 * self.cpus + 1
        self.threads = 2
        self.server: Server | None = None
        self.started = time.monotonic()

    # Output -------------------------------------------------------------------------------

    def record(self, figure: Figure) -> None:
        self.figures[figure.name] = figure
        print(figure.line(), flush=True)
        if figure.details:
            self.say(f"{figure.name}: {figure.details}"[:500])

    def say(self, text: str) -> None:
        print(f"# {text}", file=sys.stderr, flush=True)

    def guarded(self, name: str, kind: str, target: float, method: str, measure) -> None:
        """Run one figure; a failure is reported as that figure's skip, and the run goes on."""
        try:
            measure()
        except Exception as error:  # noqa: BLE001 (one broken figure must not hide the rest)
            self.record(Figure(name, kind, None, target, method, skipped=f"failed: {error}"[:300]))
            self.failures.append(name)

    # Setup --------------------------------------------------------------------------------

    def setup(self) -> None:
        t0 = time.monotonic()
        admin_sql(
            f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)', f'CREATE DATABASE "{self.db}"'
        )
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.timings["migrate"] = time.monotonic() - t0
        self._accounts()
        t1 = time.monotonic()
        self._bulk()
        self.timings["bulk data"] = time.monotonic() - t1

    def _accounts(self) -> None:
        from django.contrib.auth.models import Group, Permission, User
        from django.contrib.contenttypes.models import ContentType

        from approvals.models import PausePacket
        from approvals.services.policies import policy_save
        from approvals.services.service_accounts import service_account_create

        account, self.token = service_account_create(name="bench")
        self.account = account
        policy_save(
            document={
                "name": "bench-allow",
                "priority": 10,
                "enabled": True,
                "match": {"tool": "bench.allow"},
                "effect": "allow",
            },
            actor="bench",
        )
        self.groups = {
            name: Group.objects.create(name=name) for name in ("reviewers", "deciders", "racers")
        }
        self.users = {}
        for name, group in (("reviewer", "reviewers"), ("decider", "deciders")):
            user = User.objects.create(username=name)
            user.set_unusable_password()
            user.save()
            user.groups.add(self.groups[group])
            self.users[name] = user
        auditor = User.objects.create(username="auditor")
        auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
        self.users["auditor"] = auditor
        racers = User.objects.bulk_create(
            [User(username=f"racer{i:02d}", password="!") for i in range(self.sizes.race_clients)]
        )
        self.groups["racers"].user_set.add(*racers)
        self.racers = racers
        self.packet_ct = ContentType.objects.get_for_model(PausePacket).id

    def _bulk(self) -> None:
        from bench import data

        s = self.sizes
        data.bulk_packets(
            prefix="q",
            count=s.open_packets,
            executions=s.packet_executions,
            account=self.account.id,
            group_id=self.groups["reviewers"].id,
            owner="reviewers",
            codenames=("view_pausepacket", "resume_pausepacket"),
            expires_seconds=3600,
        )
        data.filler_executions(account=self.account.id)
        self.timeline_id = data.timeline_execution(account=self.account.id, steps=s.timeline_steps)
        t0 = time.monotonic()
        added = data.seed_audit(
            total=s.audit_events,
            packets_prefix="q",
            packets=s.open_packets,
            executions=s.packet_executions,
            timeline_execution_id=self.timeline_id,
            timeline_steps=s.timeline_steps,
        )
        self.timings["audit seed"] = time.monotonic() - t0
        self.audit_rows = data.scalar("SELECT count(*) FROM audit_auditevent")
        self.say(f"seeded {added} audit events in {self.timings['audit seed']:.1f} s")
        # A database as it is in service, not minutes after a bulk load: without this,
        # autovacuum visits the freshly written tables while the figures are measured.
        t0 = time.monotonic()
        data.settle()
        self.timings["vacuum"] = time.monotonic() - t0

    def session_cookie(self, user) -> tuple[str, str]:
        """A logged-in session for `user`, as the login view would leave it; (Cookie, CSRF)."""
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.utils.crypto import get_random_string

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        csrf = get_random_string(32)
        if settings.CSRF_USE_SESSIONS:
            store["_csrftoken"] = csrf
        store.save()
        cookie = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
        if not settings.CSRF_USE_SESSIONS:
            cookie += f"; {settings.CSRF_COOKIE_NAME}={csrf}"
        return cookie, csrf

    def start_server(self) -> Server:
        if self.server is None:
            self.server = waiters.web_server(self, "gunicorn-a").start()
        return self.server

    # The figures ---------------------------------------------------------------------------

    def queue(self) -> None:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        s = self.sizes
        open_count = self._scalar(
            "SELECT count(*) FROM approvals_pausepacket p WHERE p.status = 'pending' AND EXISTS"
            " (SELECT 1 FROM approvals_pausepacketgroupobjectpermission g"
            " JOIN auth_permission a ON a.id = g.permission_id"
            " WHERE g.content_object_id = p.id AND g.group_id = %s"
            " AND a.codename = 'view_pausepacket')",
            [self.groups["reviewers"].id],
        )
        cookie, _ = self.session_cookie(self.users["reviewer"])

        def count():
            client = Client(HTTP_HOST=ALLOWED_HOST)
            name, _, value = cookie.partition(";")[0].partition("=")
            client.cookies[name] = value
            client.get("/approvals/")  # caches warm, as in a running server
            with CaptureQueriesContext(connection) as captured:
                answer = client.get("/approvals/")
            if answer.status_code != 200:
                raise RuntimeError(f"queue page answered {answer.status_code}")
            shown = answer.content.count(b"/approvals/") - 1
            self.queue_sql = [q["sql"] for q in captured.captured_queries]
            self.record(
                Figure(
                    "queue_queries",
                    "limit",
                    len(captured.captured_queries),
                    12,
                    f"SQL statements of one GET /approvals/ by a reviewer whose group may view "
                    f"{open_count:,} open packets (Django test client in the bench process, "
                    "production settings, counted with CaptureQueriesContext, caches warm).",
                    f"{len(captured.captured_queries)} statements; page links seen: {shown}",
                )
            )

        self.guarded("queue_queries", "limit", 12, "", count)

        def latency():
            server = self.start_server()
            result = load(
                {
                    "kind": "sequential",
                    "url": server.url,
                    "path": "/approvals/",
                    "headers": {"Cookie": cookie},
                    "warmup": 5,
                    "count": s.page_requests,
                    "max_seconds": s.page_seconds,
                },
                env=self.env,
                timeout=s.page_seconds + 300,
            )
            self._expect_ok(result, "queue page")
            self.record(
                Figure(
                    "queue_p95_ms",
                    "limit",
                    result["p95_ms"],
                    150,
                    f"GET /approvals/ over HTTP by the reviewer, one request at a time, up to "
                    f"{s.page_requests} requests (or {s.page_seconds:.0f} s) after 5 "
                    f"unmeasured, with {open_count:,} open packets visible to the reviewer and "
                    f"{self.audit_rows:,} audit events in the database.",
                    _latencies(result),
                )
            )

        self.guarded("queue_p95_ms", "limit", 150, "", latency)

    def timeline(self) -> None:
        from django.urls import Resolver404, resolve

        path = f"/executions/{self.timeline_id}/"
        try:
            resolve(path)
        except Resolver404:
            self.record(
                Figure("timeline_p95_ms", "limit", None, 300, "", skipped="page not built yet")
            )
            return

        def latency():
            events = self._scalar(
                "SELECT count(*) FROM audit_auditevent WHERE execution_id = %s", [self.timeline_id]
            )
            cookie, _ = self.session_cookie(self.users["auditor"])
            server = self.start_server()
            result = load(
                {
                    "kind": "sequential",
                    "url": server.url,
                    "path": path,
                    "headers": {"Cookie": cookie},
                    "warmup": 3,
                    "count": max(3, self.sizes.page_requests // 2),
                    "max_seconds": self.sizes.page_seconds,
                },
                env=self.env,
                timeout=400,
            )
            self._expect_ok(result, "timeline page")
            self.record(
                Figure(
                    "timeline_p95_ms",
                    "limit",
                    result["p95_ms"],
                    300,
                    f"GET /executions/<uuid>/ over HTTP, one at a time, for an execution with "
                    f"{events:,} record events ({self.sizes.timeline_steps:,} steps, each gated "
                    "and with its outcome), by a user holding audit.view_auditevent.",
                    _latencies(result),
                )
            )

        self.guarded("timeline_p95_ms", "limit", 300, "", latency)

    def export(self) -> None:
        from django.urls import Resolver404, resolve

        try:
            resolve("/audit/export.csv")
        except Resolver404:
            for name, kind, target in (
                ("export_vs_copy", "ratio", 0.5),
                ("export_peak_rss_mb", "limit", 150),
            ):
                self.record(Figure(name, kind, None, target, "", skipped="page not built yet"))
            return

        def measure():
            server = self.start_server()
            cookie, _ = self.session_cookie(self.users["auditor"])
            rows = self._scalar("SELECT count(*) FROM audit_auditevent")
            pids = server.worker_pids()
            baseline = {pid: _status_kb(pid, "VmRSS") for pid in pids}
            for pid in pids:
                _reset_peak(pid)
            sampler = _RssSampler(pids)
            sampler.start()
            http, copies = [], []
            try:
                # Each side warms the cache for the other: they take turns to go first.
                for sample in range(self.sizes.export_samples):
                    for side in ("http", "copy") if sample % 2 == 0 else ("copy", "http"):
                        if side == "copy":
                            copies.append(self._copy_seconds())
                        else:
                            http.append(self._export_over_http(server, cookie))
            finally:
                sampler.stop()
            result = _median_by(http, "elapsed_s")
            copy = _median_by(copies, "seconds")
            peaks = {pid: max(_status_kb(pid, "VmHWM") or 0, sampler.peak[pid]) for pid in pids}
            growth = max((peaks[pid] - (baseline[pid] or 0)) for pid in pids) / 1024
            http_rate = rows / result["elapsed_s"]
            copy_rate = rows / copy["seconds"]
            self.record(
                Figure(
                    "export_vs_copy",
                    "ratio",
                    http_rate / copy_rate,
                    0.5,
                    f"GET /audit/export.csv (no filter: all {rows:,} rows) read to the end by the "
                    "load generator, rows/s, divided by rows/s of psql running COPY (the same "
                    "rows and columns) TO STDOUT into /dev/null; the median of "
                    f"{len(http)} runs of each, the two sides taking turns to go first.",
                    f"HTTP {http_rate:,.0f} rows/s (median {result['elapsed_s']:.2f} s of "
                    + ", ".join(f"{r['elapsed_s']:.2f}" for r in http)
                    + f"; {result['bytes'] / 1e6:,.0f} MB, first byte after "
                    f"{result['first_byte_s']:.2f} s); COPY {copy_rate:,.0f} rows/s (median "
                    f"{copy['seconds']:.2f} s of "
                    + ", ".join(f"{c['seconds']:.2f}" for c in copies)
                    + f"); COPY query: `{copy['sql']}`",
                )
            )
            self.record(
                Figure(
                    "export_peak_rss_mb",
                    "limit",
                    growth,
                    150,
                    "Peak resident memory of a gunicorn worker serving the exports (every HTTP "
                    "run of export_vs_copy), minus its resident memory before them (VmHWM reset "
                    "through /proc/<pid>/clear_refs, and VmRSS sampled every 50 ms), the largest "
                    "over the server's workers, MiB.",
                    "per worker (kB before -> peak): "
                    + ", ".join(f"{baseline[p]} -> {peaks[p]}" for p in pids),
                )
            )

        try:
            measure()
        except Exception as error:  # noqa: BLE001
            for name, kind, target in (
                ("export_vs_copy", "ratio", 0.5),
                ("export_peak_rss_mb", "limit", 150),
            ):
                self.record(Figure(name, kind, None, target, "", skipped=f"failed: {error}"[:300]))
                self.failures.append(name)

    def _export_over_http(self, server, cookie: str) -> dict:
        result = load(
            {
                "kind": "fetch",
                "url": server.url,
                "path": "/audit/export.csv",
                "headers": {"Cookie": cookie},
                "timeout": 900,
            },
            env=self.env,
            timeout=950,
        )
        if result["status"] != 200:
            raise RuntimeError(f"export answered {result['status']}")
        return result

    def _copy_seconds(self) -> dict:
        """psql running COPY of the rows the export writes: the export's own COPY statement
        (audit.csv_export.export_query, no filter) when it has one."""
        from django.db import connection

        try:
            from audit.csv_export import export_query
            from audit.selectors import AuditFilters

            connection.ensure_connection()
            sql = export_query(AuditFilters()).as_string(connection.connection)
        except ImportError:
            sql = (
                "COPY (SELECT id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash"
                " FROM audit_auditevent ORDER BY id) TO STDOUT (FORMAT csv, HEADER)"
            )
        psql = f'psql -h {PG_HOST} -p {PG_PORT} -U {PG_USER} -d {self.db} -Atc "$0" > /dev/null'
        t0 = time.perf_counter()
        code, _, err = run_child(["sh", "-c", psql, sql], env=dict(os.environ), timeout=600)
        if code != 0:
            raise RuntimeError(f"COPY failed: {err}")
        return {"seconds": time.perf_counter() - t0, "sql": sql}

    def verify(self, *, figure: bool) -> bool:
        rows = self._scalar("SELECT count(*) FROM audit_auditevent")
        t0 = time.perf_counter()
        code, out, err = run_child([PYTHON, "manage.py", "verify_audit"], env=self.env, timeout=900)
        elapsed = time.perf_counter() - t0
        if not figure:
            return code == 0
        if code != 0:
            raise RuntimeError(f"verify_audit failed ({code}): {(out + err).strip()[-500:]}")
        self.record(
            Figure(
                "verify_rows_per_s",
                "ratio",
                rows / elapsed,
                100_000,
                f"`manage.py verify_audit` over the whole record ({rows:,} rows, a valid chain "
                "seeded in bulk), rows divided by the wall time of the whole command, Django's "
                "start included.",
                f"{elapsed:.2f} s wall; the command says: {out.strip().splitlines()[0]}",
            )
        )
        return True

    def gate(self) -> None:
        for count in self.shadow_policies:
            self._shadow_policies(count)
            self.say(f"gate phase with {count} shadow policies")
            # Threads of this pass are new executions: a pass must not replay another's keys.
            self.gate_tag = f"s{count}"
            self._gate()
            if count:
                stored = self._scalar(
                    "SELECT count(*) FROM approvals_gatecheck WHERE shadow IS NOT NULL"
                )
                self.say(f"checks stored with shadow verdicts so far: {stored:,}")

    def _gate(self) -> None:
        s = self.sizes
        server = self.start_server()
        clients = 2 * self.workers * self.threads
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        totals = {"gate": [], "floor": []}
        results = {"gate": [], "floor": []}
        for side in ("gate", "floor"):  # warm every worker on both paths, unmeasured
            load(
                self._gate_job(server, side, f"warm{side}", clients, s.warmup_seconds, headers),
                env=self.env,
                timeout=120,
            )
        for r in range(s.rounds):
            for side in ("gate", "floor") if r % 2 == 0 else ("floor", "gate"):
                result = load(
                    self._gate_job(
                        server, side, f"r{r}{side}", clients, s.gate_seconds / s.rounds, headers
                    ),
                    env=self.env,
                    timeout=s.gate_seconds + 300,
                )
                self._expect_ok(result, side)
                totals[side].append(result["requests"])
                results[side].append(result)
        duration = s.gate_seconds
        gate_rate = sum(totals["gate"]) / duration
        floor_rate = sum(totals["floor"]) / duration
        self.gate_rate = gate_rate
        self.record(
            Figure(
                "gate_vs_floor",
                "ratio",
                gate_rate / floor_rate,
                0.7,
                f"Allowed gate checks per second (POST /api/v1/gate, a policy allows the tool; "
                f"every request a new step) divided by the floor's rate: bench/floor_app.py on "
                f"the same gunicorn, same body, writing the same rows (execution, gate check, "
                "chained gate.checked event) in one transaction, in the round trips the gate "
                "uses (the execution; the check, the chain lock, the append), committed as the "
                "gate commits (not waiting for the flush under the chain lock, then waiting for "
                "it). "
                f"{clients} closed-loop clients in the load generator, {s.rounds} alternating "
                f"rounds of {s.gate_seconds / s.rounds:.0f} s per side after "
                f"{s.warmup_seconds:.0f} s of warm-up.",
                f"gate {gate_rate:,.0f}/s (p50 {_mean(results['gate'], 'p50_ms')} ms), floor "
                f"{floor_rate:,.0f}/s (p50 {_mean(results['floor'], 'p50_ms')} ms)",
            )
        )

        def versus_pg():
            from bench import data

            pg_clients = self.workers * self.threads
            data.execute(
                "INSERT INTO approvals_execution (id, service_account_id, thread_id, workflow,"
                " owner, created_at) SELECT gen_random_uuid(), %s, 'pg-' || c, 'bench-flow', '',"
                " now() FROM generate_series(0, %s) AS c ON CONFLICT DO NOTHING",
                [self.account.id, pg_clients],
            )
            bench = pgbench(
                self.db,
                BENCH / "pgbench" / "gate_allow.sql",
                clients=pg_clients,
                seconds=s.pg_seconds,
                defines={"acct": self.account.id, "prefix": self.account.token_prefix},
            )
            self.record(
                Figure(
                    "gate_vs_pg",
                    "ratio",
                    gate_rate / bench["tps"],
                    0.15,
                    "The gate's rate (as in gate_vs_floor) divided by pgbench running the SQL of "
                    "an allowed gate check (bench/pgbench/gate_allow.sql: the statements Django "
                    "sends, in order, in one transaction, grouped into the same round trips) "
                    f"with {pg_clients} clients, one per server thread.",
                    f"pgbench {bench['tps']:,.0f} tps (latency {bench['latency']}, "
                    f"{bench['failed']} failed): `pgbench {bench['argv']}`; the gate's SQL: "
                    f"{self.gate_sql_summary}",
                )
            )

        def p99():
            from bench import data

            # What the closed-loop rounds wrote is on disk before the measurement starts. No
            # CHECKPOINT: right after one, every page's first change logs a whole page image,
            # and WAL segment files are removed rather than kept for reuse, so the run would
            # pay for new segments (16 MB written and synced under the WAL lock) mid-way.
            data.quiet_disk(checkpoint=False)
            result = load(
                {
                    **self._gate_job(server, "gate", "p99", 64, s.p99_seconds, headers),
                    "kind": "rate",
                    "rate": s.p99_rate,
                    "threads": 64,
                },
                env=self.env,
                timeout=s.p99_seconds + 300,
            )
            self._expect_ok(result, "gate at a fixed rate")
            self.record(
                Figure(
                    "gate_p99_ms",
                    "limit",
                    result["p99_ms"],
                    50,
                    f"p99 latency of allowed gate checks sent open-loop at {s.p99_rate:.0f} "
                    f"requests/s for {s.p99_seconds:.0f} s (latency counted from each request's "
                    "scheduled moment, so queueing shows; requests still unsent 10 s after the "
                    "last was due are given up and count with the wait so far), on the server "
                    "the closed-loop rounds warmed, after os.sync and before pgbench runs.",
                    _latencies(result)
                    + f", answered {result['per_s']:.0f}/s, {result['unsent']} given up unsent;"
                    f" worst latency of each second (ms): {result['max_ms_by_second']}",
                )
            )

        self.guarded("gate_p99_ms", "limit", 50, "", p99)
        self.guarded("gate_vs_pg", "ratio", 0.15, "", versus_pg)

    def _shadow_policies(self, count: int) -> None:
        """The gate's figures hold with shadow policies present (issue 20): these three match
        every bench check, so each check evaluates all three and stores three verdicts."""
        from approvals.services.policies import policy_save

        for document in SHADOW_POLICIES[:count]:
            policy_save(document={**document, "mode": "shadow"}, actor="bench")
        if count:
            self.notes.append(
                f"The gate phase ran with {count} shadow policies matching every check "
                "(bench/run.py SHADOW_POLICIES): each check stores what they would answer."
            )

    def _gate_job(self, server, side, tag, clients, seconds, headers) -> dict:
        body = (
            '{"idempotency_key": "{client}:{n}", "execution": {"thread_id": "{client}", '
            '"workflow": "bench-flow", "owner": "reviewers"}, "step": {"index": {n}, '
            '"name": "step"}, "action": {"tool": "bench.allow", "args": {"user": "new.hire", '
            '"n": {n}}, "side_effect": "not_started"}, "context": [{"name": "ticket", "value": '
            '{"id": {n}}, "observed_at": "2026-11-22T09:00:00Z"}], "risk": {"score": 0.1, '
            '"labels": []}}'
        )
        return {
            "kind": "closed",
            "url": server.url,
            "method": "POST",
            "path": "/api/v1/gate" if side == "gate" else "/bench/floor",
            "headers": headers,
            "body": body,
            "tag": self.gate_tag + tag,
            "threads": clients,
            "seconds": seconds,
        }

    def capture_gate_sql(self) -> None:
        """The SQL of one allowed gate check, as the API makes it: what gate_allow.sql mirrors."""
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client(HTTP_HOST=ALLOWED_HOST)
        payload = {
            "idempotency_key": "capture:1",
            "execution": {"thread_id": "capture", "workflow": "bench-flow"},
            "step": {"index": 1, "name": "step"},
            "action": {"tool": "bench.allow", "args": {"n": 1}, "side_effect": "not_started"},
        }
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        client.post(
            "/api/v1/gate",
            {**payload, "idempotency_key": "capture:0", "step": {"index": 0, "name": "step"}},
            content_type="application/json",
            **auth,
        )
        with CaptureQueriesContext(connection) as captured:
            answer = client.post("/api/v1/gate", payload, content_type="application/json", **auth)
        if answer.status_code != 200 or answer.json()["decision"] != "allow":
            raise RuntimeError(f"gate answered {answer.status_code}: {answer.content[:300]!r}")
        trips = [_round_trip_heads(q["sql"]) for q in captured.captured_queries]
        self.gate_sql_summary = (
            f"{len(trips)} round trips, {sum(map(len, trips))} statements: "
            + "; ".join(" + ".join(heads) for heads in trips)
        )

    def decide(self) -> None:
        from bench import data

        s = self.sizes
        workers = self.workers
        # More packets than any rate seen here could use up: running out is reported, not hidden.
        per_worker = int(600 * s.decide_seconds / workers) + 50
        pg_per_client = int(1500 * s.pg_seconds / workers) + 50
        common = {
            "executions": workers,
            "account": self.account.id,
            "group_id": self.groups["deciders"].id,
            "owner": "deciders",
            "expires_seconds": 30 * 86400,
        }
        data.bulk_packets(prefix="svc", count=per_worker * workers, **common)
        data.bulk_packets(prefix="pgd", count=pg_per_client * workers, **common)
        data.execute("ANALYZE approvals_pausepacket, approvals_pausepacketgroupobjectpermission")
        processes = [
            CHILDREN.spawn(
                [
                    PYTHON,
                    str(BENCH / "decide_worker.py"),
                    json.dumps(
                        {
                            "worker": w,
                            "workers": workers,
                            "prefix": "svc",
                            "count": per_worker,
                            "seconds": s.decide_seconds,
                            "username": "decider",
                        }
                    ),
                ],
                env=self.env,
                cwd=BASE,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(workers)
        ]
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"decide worker failed: {process.stderr.read()[-1500:]}")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=s.decide_seconds + 120)
            CHILDREN.end(process)
            if process.returncode != 0:
                raise RuntimeError(f"decide worker failed: {err.strip()[-1500:]}")
            results.append(json.loads(out))
        approved = sum(r["approved"] for r in results)
        elapsed = max(r["elapsed_s"] for r in results)
        service_rate = approved / elapsed
        exhausted = any(r["exhausted"] for r in results)
        bench = pgbench(
            self.db,
            BENCH / "pgbench" / "approve.sql",
            clients=workers,
            seconds=s.pg_seconds,
            defines={
                "uid": self.users["decider"].id,
                "ct": self.packet_ct,
                "clients": workers,
                "n": 0,
            },
        )
        self.record(
            Figure(
                "decide_vs_pg",
                "ratio",
                service_rate / bench["tps"],
                0.15,
                f"Approvals per second through approvals.services.review.packet_approve (row "
                f"lock, authority, compare-and-set, vote, two chained audit events) in "
                f"{workers} separate reviewer processes for {s.decide_seconds:.0f} s, each on "
                f"its own pending packets, divided by pgbench running the same SQL in the same "
                f"round trips (bench/pgbench/approve.sql) with {workers} clients.",
                f"service {service_rate:,.0f}/s ({approved:,} approvals"
                + (", RAN OUT OF PACKETS: rate is a lower bound" if exhausted else "")
                + f"); pgbench {bench['tps']:,.0f} tps (latency {bench['latency']}, "
                f"{bench['failed']} failed): `pgbench {bench['argv']}`",
            )
        )

    def race(self) -> None:
        from bench import data

        s = self.sizes
        data.bulk_packets(
            prefix="race",
            count=s.race_packets,
            executions=max(1, s.race_packets // 10),
            account=self.account.id,
            group_id=self.groups["racers"].id,
            owner="racers",
            expires_seconds=30 * 86400,
            required=1,
            required_mod=2,
        )
        ids = data.packet_ids("race", s.race_packets)
        reviewers = []
        for user in self.racers:
            cookie, csrf = self.session_cookie(user)
            reviewers.append({"cookie": cookie, "csrf": csrf})
        server_a = self.start_server()
        server_b = Server(
            "gunicorn-b", self.env, self.work, workers=self.workers, threads=self.threads
        ).start()
        try:
            result = load(
                {
                    "kind": "race",
                    "servers": [server_a.url, server_b.url],
                    "packets": ids,
                    "reviewers": reviewers,
                    "clients": s.race_clients,
                    "seconds": s.race_seconds,
                },
                env=self.env,
                timeout=s.race_seconds + 300,
            )
        finally:
            server_b.stop()
        problems, closed, summary = race_problems(ids)
        if closed == 0:
            raise RuntimeError(f"no packet was decided: {result['statuses']}")
        self.record(
            Figure(
                "race_duplicates",
                "limit",
                len(problems),
                0,
                f"{s.race_clients} reviewers (each its own session) approving (3 in 4) or "
                f"rejecting random packets among {s.race_packets} (half need 2 approvals) for "
                f"{s.race_seconds:.0f} s through the browser endpoints POST "
                "/approvals/<id>/approve/ and /reject/, half of them on each of two independent "
                "gunicorn servers on the one database; then counted: packets with more than "
                "one closing audit event, decided_by not matching the votes or the closing "
                "event, votes past quorum or after the decision.",
                f"{closed} of {s.race_packets} packets closed ({summary}); "
                f"{result['requests']:,} actions in {s.race_seconds:.0f} s "
                f"({result['per_s']:.0f}/s, p50 {result['p50_ms']:.0f} ms), answers "
                f"{result['statuses']}, {result['errors']} transport errors"
                + (f"; problems: {problems[:5]}" if problems else ""),
            )
        )

    def sweep(self) -> None:
        from approvals.services.expiry import packets_expire_overdue

        overdue_at = datetime.now(UTC) + timedelta(days=2)
        overdue = self._scalar(
            "SELECT count(*) FROM approvals_pausepacket WHERE status IN ('pending', 're_review',"
            " 'reconciling') AND expires_at <= %s",
            [overdue_at],
        )
        from bench import data

        data.quiet_disk(checkpoint=False)
        t0 = time.perf_counter()
        expired = packets_expire_overdue(now=overdue_at)
        elapsed = time.perf_counter() - t0
        self.record(
            Figure(
                "sweep_100k_s",
                "limit",
                elapsed,
                10,
                f"Seconds for approvals.services.expiry.packets_expire_overdue (the sweeper "
                f"beat runs) to expire {overdue:,} overdue open packets, called in the bench "
                "process with `now` two days ahead, once the disk has written back what the "
                "phases before wrote (os.sync).",
                f"expired {expired:,} packets ({expired / elapsed:,.0f}/s)",
            )
        )

    def replay(self) -> None:
        from io import StringIO

        from django.core.management import call_command

        from bench import data

        policy_file = self.work / "replay-policies.json"
        policy_file.write_text(json.dumps(REPLAY_POLICIES), encoding="utf-8")
        checks = self._scalar("SELECT count(*) FROM approvals_gatecheck")
        data.quiet_disk(checkpoint=False)
        out = StringIO()
        t0, cpu0 = time.perf_counter(), time.process_time()
        call_command("replay_policies", str(policy_file), since=30, stdout=out)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        summary = out.getvalue().splitlines()
        self.record(
            Figure(
                "replay_100k_s",
                "limit",
                elapsed,
                10,
                f"Seconds for `manage.py replay_policies FILE --since 30` (called in the bench "
                f"process) to decide again every gate check recorded in the bulk data "
                f"({checks:,}: the 100,000 of the open packets and the timeline's) under "
                f"{len(REPLAY_POLICIES)} policies of a file (bench/run.py REPLAY_POLICIES) over "
                "the stored one, streaming the checks and evaluating each with the gate's own "
                "evaluation; before the gate phase writes more.",
                f"{checks / elapsed:,.0f} checks/s, {cpu:.1f} s of CPU in the bench process "
                "(the rest: PostgreSQL streaming the rows, and waiting for a core); the command "
                "says: "
                + " / ".join(line.strip() for line in summary if not line.startswith("    ")),
            )
        )

    # Helpers ------------------------------------------------------------------------------

    def waiters(self) -> None:
        waiters.run(self)

    def _scalar(self, sql, params=None):
        from bench import data

        return data.scalar(sql, params)

    @staticmethod
    def _expect_ok(result: dict, what: str) -> None:
        answered = sum(result["statuses"].values())
        good = sum(n for status, n in result["statuses"].items() if status.startswith("2"))
        if not answered or good < answered or result["errors"]:
            raise RuntimeError(f"{what}: answers {result['statuses']}, {result['errors']} errors")

    # The run ------------------------------------------------------------------------------

    def run(self) -> int:
        self.failures: list[str] = []
        self.load_at_start = _loadavg()
        self.say(f"mode {self.mode}, database {self.db}, work dir {self.work}")
        self.setup()
        self.say(f"setup done in {time.monotonic() - self.started:.0f} s")
        self.capture_gate_sql()
        # Reads first, on exactly the seeded data; then the figures that write.
        phases = [
            ("queue", self.queue),
            ("timeline", self.timeline),
            ("export", self.export),
            (
                "verify",
                lambda: self.guarded(
                    "verify_rows_per_s", "ratio", 100_000, "", lambda: self.verify(figure=True)
                ),
            ),
            ("replay", lambda: self.guarded("replay_100k_s", "limit", 10, "", self.replay)),
            ("gate", self.gate),
            ("decide", lambda: self.guarded("decide_vs_pg", "ratio", 0.15, "", self.decide)),
            ("race", lambda: self.guarded("race_duplicates", "limit", 0, "", self.race)),
            ("sweep", lambda: self.guarded("sweep_100k_s", "limit", 10, "", self.sweep)),
            ("waiters", lambda: self.guarded("waiters_held", "ratio", 10_000, "", self.waiters)),
        ]
        for name, phase in phases:
            if self.only and name not in self.only:
                continue
            t0 = time.monotonic()
            phase()
            self.timings[name] = time.monotonic() - t0
            self.say(f"{name}: {self.timings[name]:.1f} s")
        self.chain_intact_after = self.verify(figure=False)
        if not self.chain_intact_after:
            self.notes.append("verify_audit found the chain BROKEN after the run's writes")
        self.timings["total"] = time.monotonic() - self.started
        held = [f for f in self.figures.values() if f.holds]
        measured = [f for f in self.figures.values() if f.holds is not None]
        self.say(
            f"{len(held)} of {len(measured)} measured figures hold; "
            f"{len(self.figures) - len(measured)} skipped; {self.timings['total']:.0f} s"
        )
        return 1 if self.failures else 0

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        CHILDREN.end_all()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110 (Django may not be set up yet)
            pass
        if not self.keep:
            try:
                admin_sql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            except Exception as error:  # noqa: BLE001
                self.say(f"could not drop {self.db}: {error}")
        shutil.rmtree(self.work, ignore_errors=True)


def race_problems(ids: list[str]) -> tuple[list[str], int, str]:
    """Packets decided twice or inconsistently; how many closed; counts by status."""
    from django.db import connection

    closing = (
        "packet.approved",
        "packet.rejected",
        "packet.expired",
        "packet.terminated",
        "packet.applied",
        "packet.superseded",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id::text, p.status, p.decided_by, p.required_approvals, p.decided_at,"
            " (SELECT coalesce(jsonb_agg(u.username ORDER BY v.created_at), '[]'::jsonb)"
            "    FROM approvals_vote v JOIN auth_user u ON u.id = v.user_id"
            "   WHERE v.packet_id = p.id AND v.snapshot_hash = p.snapshot_hash),"
            " (SELECT count(*) FROM approvals_vote v WHERE v.packet_id = p.id"
            "     AND p.decided_at IS NOT NULL AND v.created_at > p.decided_at),"
            " (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', a.kind, 'actor', a.actor,"
            "         'decided_by', a.data -> 'decided_by') ORDER BY a.id), '[]'::jsonb)"
            "    FROM audit_auditevent a WHERE a.packet_id = p.id AND a.kind = ANY(%s))"
            " FROM approvals_pausepacket p WHERE p.id = ANY(%s::uuid[])",
            [list(closing), ids],
        )
        rows = cursor.fetchall()
    problems, statuses = [], {}
    for packet_id, status, decided_by, required, _at, voters, late_votes, closes in rows:
        decided_by = _json(decided_by)
        voters = _json(voters)
        closes = _json(closes)
        statuses[status] = statuses.get(status, 0) + 1
        why = []
        if len(closes) > 1:
            why.append(f"{len(closes)} closing events")
        if late_votes:
            why.append(f"{late_votes} votes after the decision")
        if len(voters) > required:
            why.append(f"{len(voters)} votes for a quorum of {required}")
        if status == "approved":
            if decided_by != voters or len(decided_by) != required:
                why.append(f"approved by {decided_by}, votes {voters}")
        elif status == "rejected":
            if len(decided_by) != 1 or (closes and closes[-1]["actor"] != f"user:{decided_by[0]}"):
                why.append(f"rejected by {decided_by}, event {closes}")
        elif status == "pending" and (decided_by or closes):
            why.append(f"pending yet decided_by {decided_by}, events {closes}")
        if (
            closes
            and status != "pending"
            and (
                closes[0]["kind"] != f"packet.{status}"
                or _json(closes[0]["decided_by"]) != decided_by
            )
        ):
            why.append(f"{status} {decided_by} but the event says {closes[0]}")
        if why:
            problems.append(f"{packet_id}: " + "; ".join(why))
    closed = sum(n for status, n in statuses.items() if status != "pending")
    return problems, closed, ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _round_trip_heads(sql: str) -> list[str]:
    """The heads of the statements one execute sent (a simple query may carry several)."""
    statements = re.split(
        r";\s+(?=(?:SELECT|INSERT|WITH|UPDATE|DELETE|SET)\b)", " ".join(sql.split())
    )
    return [_statement_head(statement) for statement in statements]


def _statement_head(sql: str) -> str:
    sql = " ".join(sql.split())
    if sql.startswith("SET "):
        return sql
    match = re.match(
        r"(SELECT|INSERT INTO|UPDATE|DELETE FROM|SAVEPOINT|RELEASE SAVEPOINT|BEGIN|COMMIT)"
        r"\b\s*(\S*)",
        sql,
    )
    if not match:
        written = re.match(r"WITH\b.*?\b(INSERT INTO|UPDATE)\s+(\w+)", sql)
        return f"WITH ... {written.group(1)} {written.group(2)}" if written else sql[:40]
    verb, rest = match.groups()
    if verb == "SELECT":
        table = re.search(r'\bFROM\s+"?(\w+)"?', sql)
        func = re.match(r"SELECT\s+(\w+)\(", sql)
        if func and func.group(1) in (
            "pg_advisory_xact_lock",
            "nextval",
            "pg_notify",
            "jsonb_build_object",
            "pg_logical_emit_message",
        ):
            return f"SELECT {func.group(1)}(...)"
        return f"SELECT FROM {table.group(1)}" if table else "SELECT"
    if verb in ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"):
        return verb
    return f"{verb} {rest.strip(chr(34))}"


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak(pid: int) -> None:
    # Where this is not allowed, the sampled VmRSS still bounds the peak from below.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class _RssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: 0 for pid in pids}
        self._stop = threading.Event()

    def run(self):
        while not self._stop.wait(0.05):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], _status_kb(pid, "VmRSS") or 0)

    def stop(self):
        self._stop.set()
        self.join(timeout=2)


def _latencies(result: dict) -> str:
    return (
        f"{result['requests']} requests: p50 {result['p50_ms']:.1f} ms, p95 "
        f"{result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms"
    )


def _median_by(samples: list[dict], key: str) -> dict:
    """The sample whose `key` is the median (the lower middle one of an even number)."""
    ordered = sorted(samples, key=lambda sample: sample[key])
    return ordered[(len(ordered) - 1) // 2]


def _mean(results: list[dict], key: str) -> str:
    values = [r[key] for r in results if r.get(key) is not None]
    return f"{statistics.mean(values):.1f}" if values else "-"


# --- RESULTS.md ----------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    import django
    import gunicorn

    from bench import data

    pg = data.scalar("SELECT version()")
    settings = {
        name: data.scalar(f"SHOW {name}")
        for name in ("shared_buffers", "synchronous_commit", "max_connections", "work_mem")
    }
    return {
        "nproc": os.cpu_count(),
        "memory": memory,
        "cpu": cpu,
        "postgres": pg,
        "postgres settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "kernel": platform.release(),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _revision() -> str:
    def git(*args):
        return subprocess.run(  # noqa: S603 (git, with our own arguments)
            ["git", *args],  # noqa: S607
            cwd=BASE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git(
        "status", "--porcelain", "--untracked-files=no", "--", "approvals", "audit", "gatekeeper"
    )
    return head + (
        " with uncommitted changes in approvals/, audit/ or gatekeeper/" if dirty else ""
    )


def write_results(bench: Bench, path: Path, command: str) -> None:
    m = {"code": _revision(), **machine()}
    m["load average (1, 5, 15 min) at the start"] = bench.load_at_start
    m["load average (1, 5, 15 min) at the end"] = _loadavg()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {now} ({bench.mode} mode, "
        f"{bench.timings.get('total', 0):.0f} s). Issue 8 defines the figures and targets; "
        "`bench/run --quick` repeats this run, `bench/run` runs longer.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in m.items()],
        "",
        "## Figures",
        "",
        "| figure | value | target | holds |",
        "|---|---|---|---|",
    ]
    for name in ORDER:
        figure = bench.figures.get(name)
        if figure is None:
            continue
        sign = ">=" if figure.kind == "ratio" else "<="
        if figure.skipped:
            lines.append(
                f"| {name} | skipped: {figure.skipped} | {sign} {fmt(figure.target)} | - |"
            )
        else:
            holds = "yes" if figure.holds else "**no**"
            lines.append(
                f"| {name} | {fmt(figure.value)} | {sign} {fmt(figure.target)} | {holds} |"
            )
    lines += [
        "",
        "The lines bench/run printed:",
        "",
        "```",
        *[bench.figures[n].line() for n in ORDER if n in bench.figures],
        "```",
        "",
        "## Method",
        "",
        f"- Database `{bench.db}` on the machine's PostgreSQL at {PG_HOST}:{PG_PORT}, created "
        "and migrated by the run and dropped at its end (`--keep` leaves it).",
        f"- Server: gunicorn {m['gunicorn']}, `gunicorn gatekeeper.wsgi:application "
        f"--worker-class=gthread --workers={bench.workers} --threads={bench.threads} "
        "--timeout=300` "
        "(2 x nproc + 1 processes), `DJANGO_SETTINGS_MODULE=bench.settings`: gatekeeper.settings "
        "from a production environment (DEBUG=false, SECRET_KEY set, ALLOWED_HOSTS=127.0.0.1, "
        "SECURE_SSL_REDIRECT=false because the bench speaks plain HTTP on 127.0.0.1) with one "
        "URL added, the floor view, which gatekeeper.settings never routes to.",
        "- Load: bench/load.py, a separate process (standard library: threads and "
        "http.client, keep-alive), bounded in requests and time, sending only to 127.0.0.1. "
        "pgbench for the database's own rate, `-M simple` as Django's psycopg backend talks "
        "(client-side binding, simple queries), its scripts grouping statements into the round "
        "trips the product makes.",
        "- Data, made in bulk by bench/data.py with INSERT ... SELECT (no service calls): "
        f"{bench.sizes.open_packets:,} open packets over {bench.sizes.packet_executions:,} "
        "executions, each with its gate check and guardian group permissions (view and resume) "
        "for the reviewer's group in the direct-foreign-key table; "
        f"{bench.audit_rows:,} audit events with a VALID hash chain (PostgreSQL renders each "
        "row's document with audit.chain.DOCUMENT_SQL, Python chains the hashes while "
        "streaming them through COPY); an execution with "
        f"{2 * bench.sizes.timeline_steps:,} record events; then `VACUUM (ANALYZE)` and "
        "`CHECKPOINT`, so autovacuum does not visit the new tables while figures are measured. "
        + ", ".join(f"{k} {v:.0f} s" for k, v in bench.timings.items() if k != "total")
        + ".",
        "- This machine is shared: other work (test suites of other sessions) may run beside the "
        "bench, which is why the load average is recorded. Ratios are measured side by side "
        "(gate and floor alternate in rounds) so that such load affects both; absolute "
        "latencies are affected in full.",
        "- Sessions for the browser pages are made the way the login view leaves them "
        "(SessionStore with the user's id, backend and auth hash); logging in through the form "
        "is not what is measured.",
        "",
    ]
    for name in ORDER:
        figure = bench.figures.get(name)
        if figure is None or figure.skipped:
            continue
        lines += [f"### {name}", "", figure.method, "", f"Measured: {figure.details}", ""]
    chain = getattr(bench, "chain_intact_after", None)
    lines += [
        "## After the run",
        "",
        f"- `verify_audit` over the whole record after every figure's writes: "
        f"{'intact' if chain else 'BROKEN' if chain is not None else 'not run'}.",
        *[f"- {note}" for note in bench.notes],
        "",
    ]
    if (BENCH / "PROFILES.md").exists():
        lines += [
            "Where a figure misses, bench/PROFILES.md has the profile and the fix recommended.",
            "",
        ]
    path.write_text("\n".join(lines))


# --- main ----------------------------------------------------------------------------------


def _shadow_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if any(not 0 <= n <= len(SHADOW_POLICIES) for n in counts) or counts != sorted(counts):
        raise argparse.ArgumentTypeError(
            f"counts from 0 to {len(SHADOW_POLICIES)}, ascending (policies stay once made)"
        )
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="every figure, in under 10 minutes")
    group.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: does it start")
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument(
        "--db", help="database name, gk_bench... (default gk_bench, or gk_bench_smoke)"
    )
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="where to write")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(),
        help="run only these phases (queue,timeline,export,verify,replay,gate,decide,race,"
        "sweep,waiters); "
        "for profiling: bench/RESULTS.md is then left alone",
    )
    parser.add_argument(
        "--shadow-policies",
        type=_shadow_counts,
        default=[len(SHADOW_POLICIES)],
        help="shadow policies present in the gate phase (default 3); a list such as 0,3 runs "
        "the phase once per count, back to back on the same server and data",
    )
    parser.add_argument(
        "--server",
        choices=("gthread", "asgi"),
        default="gthread",
        help="the server the gate, floor and page figures are measured on (docs/deployment.md)",
    )
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    db = args.db or ("gk_bench_smoke" if args.smoke else "gk_bench")
    if not re.fullmatch(r"gk_bench\w*", db):
        parser.error("the database name must start with gk_bench (it is dropped and made again)")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(CHILDREN.end_all)
    bench = Bench(mode, db, args.keep, args.only)
    bench.server_kind = args.server
    bench.shadow_policies = args.shadow_policies
    try:
        code = bench.run()
        if mode != "smoke" and not args.only:
            command = "bench/run" + (" --quick" if args.quick else "")
            write_results(bench, Path(args.results), command)
            bench.say(f"wrote {args.results}")
        return code
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
