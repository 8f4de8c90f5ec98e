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
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    BASE,
    BENCH,
    CHILDREN,
    MODES,
    ORDER,
    PG_HOST,
    PG_PORT,
    Figure,
    Server,
    _on_signal,
    admin_sql,
    fmt,
    product_env,
)
from bench.phases.decisions import DecisionsPhase
from bench.phases.gate import SHADOW_POLICIES, GatePhase
from bench.phases.reads import ReadsPhase
from bench.phases.replay import ReplayPhase
from bench.phases.setup import SetupPhase


class Bench(SetupPhase, ReadsPhase, ReplayPhase, GatePhase, DecisionsPhase):
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

    # The figures ---------------------------------------------------------------------------

    # Helpers ------------------------------------------------------------------------------

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
