"""What bench/run's phases share: sizes, child processes, servers, pgbench and figures."""

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
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
