"""bench/run's `waiters` phase (issue 15): thousands of agents long-polling one web node.

The node is gunicorn with uvicorn workers serving gatekeeper.asgi (docs/deployment.md). A
separate asyncio process (bench/waiting_load.py) starts one agent per packet, each polling as
GatekeeperClient.wait() does; once all poll, and the first round of polls has come back and
gone out again (the steady state of agents that wait for hours), this phase measures, on the
same node: a late poll, allowed gate checks at a fixed rate, the reviewer's queue page, the
database connections the node holds, and a burst of decisions reaching their agents.
"""

import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
APP_NAME = "gk-bench-asgi"  # PGAPPNAME of the node, to count its connections
FIGURES = [
    "waiters_held",
    "wake_p99_ms",
    "gate_p99_ms_waiting",
    "queue_p95_ms_waiting",
    "waiting_pg_connections",
    "late_poll_ms",
]


ASGI_THREADS = 4
# The window in which the node's CPU is measured while agents only wait.
STEADY_SECONDS = 15


@dataclass(frozen=True)
class WaitSizes:
    agents: int
    decided: int
    poll_seconds: int
    ramp_per_s: float
    gate_seconds: float
    gate_rate: float
    page_requests: int
    late_polls: int


SIZES = {
    "smoke": WaitSizes(200, 20, 5, 200, 2, 50, 5, 10),
    "quick": WaitSizes(10_000, 100, 55, 250, 15, 100, 40, 50),
    "full": WaitSizes(10_000, 100, 55, 250, 60, 100, 100, 100),
    # python -m bench.waiters: polls as long as the client's, on any data.
    "table": WaitSizes(10_000, 100, 55, 250, 15, 100, 20, 30),
}


def _run_module(bench):
    """bench/run's shared parts: one module however bench/run was started (bench.harness
    imports this one, hence the import here)."""
    from bench import harness

    return harness


def asgi_server(bench, name: str, *, workers: int, threads: int):
    """gunicorn with uvicorn workers serving gatekeeper.asgi, as docs/deployment.md runs it."""
    run = _run_module(bench)
    server = run.Server(name, bench.env, bench.work, workers=workers, threads=threads)
    server.argv = [
        str(run.VENV_BIN / "gunicorn"),
        "gatekeeper.asgi:application",
        f"--bind={run.ALLOWED_HOST}:{server.port}",
        "--worker-class=uvicorn_worker.UvicornWorker",
        f"--workers={workers}",
        "--timeout=300",
        "--graceful-timeout=5",
        "--backlog=4096",
    ]
    server.env.update(GATEKEEPER_ASGI_THREADS=str(threads), PGAPPNAME=APP_NAME)
    return server


def web_server(bench, name: str):
    """The server the other phases measure: gthread, or with `--server asgi` the ASGI node."""
    if getattr(bench, "server_kind", "gthread") == "asgi":
        return asgi_server(bench, name, workers=bench.cpus, threads=ASGI_THREADS)
    run = _run_module(bench)
    return run.Server(name, bench.env, bench.work, workers=bench.workers, threads=bench.threads)


def node_connections(db: str) -> int:
    from bench import data

    return data.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [db, APP_NAME],
    )


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"the waiting agents said nothing for {timeout:.0f} s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the waiting agents ended: {process.stderr.read()[-2000:]}")
    return line


def run(bench, agents: int | None = None, split: bool = False) -> None:
    """The phase (with `agents`, that many instead of the mode's): its figures are recorded one
    by one; a failure skips the rest. With `split`, gate checks and the queue page go to a
    gthread server of their own beside the ASGI node, which then serves only the waits
    (docs/deployment.md, "gthread and ASGI behind one address")."""
    from django.contrib.auth.models import User

    from approvals.services.review import packet_approve
    from bench import data

    s = SIZES["table" if agents is not None else bench.mode]
    if agents is not None:
        s = replace(s, agents=agents, decided=min(s.decided, max(1, agents // 2)))
    prefix = f"w{s.agents}{'s' if split else ''}"  # each round its own packets
    ids = data.packet_ids(prefix, s.agents + 1)
    data.bulk_packets(
        prefix=prefix,
        count=len(ids),
        executions=100,
        account=bench.account.id,
        group_id=bench.groups["reviewers"].id,
        owner="reviewers",
        expires_seconds=3600,
    )
    # Settled as the other phases' data is: the phases before this one (the sweep's 100,000
    # expiries, the race, the decisions) leave dead rows and dirty pages that autovacuum and the
    # checkpointer would otherwise work through while the figures are measured.
    data.settle()
    reviewer = User.objects.get(username="reviewer")
    late_id, waiting_ids = ids[-1], ids[:-1]
    packet_approve(packet_id=late_id, user=reviewer)
    run_module = _run_module(bench)
    workers, threads = bench.cpus, ASGI_THREADS
    server = asgi_server(bench, "asgi-waiters", workers=workers, threads=1 if split else threads)
    server.start()
    layout = (
        f"one web node: gunicorn with {workers} uvicorn workers serving gatekeeper.asgi "
        f"({threads} threads each for every request but the long-poll)"
    )
    sync_server = server
    if split:
        sync_server = run_module.Server(
            "gthread-beside", bench.env, bench.work, workers=workers, threads=threads
        )
        sync_server.env["PGAPPNAME"] = APP_NAME
        sync_server.start()
        layout = (
            f"one web node of two services: gunicorn with {workers} uvicorn workers serving "
            f"gatekeeper.asgi for the waits, and gunicorn gthread ({workers} x {threads}) for "
            "the gate checks and the pages"
        )
    agents = run_module.CHILDREN.spawn(
        [run_module.PYTHON, str(BENCH / "waiting_load.py")],
        env=bench.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = {
        "url": server.url,
        "token": bench.token,
        "packets": waiting_ids,
        "wait": s.poll_seconds,
        "ramp_per_s": s.ramp_per_s,
        "seconds": s.agents / s.ramp_per_s + 2 * s.poll_seconds + 240,
    }
    agents.stdin.write(json.dumps(job) + "\n")
    agents.stdin.flush()
    rss_before = _node_rss_kb(run_module, server)
    started = time.monotonic()
    try:
        in_flight = int(_read_line(agents, s.agents / s.ramp_per_s + 120).split()[1])
        bench.waiter_rss_kb = (rss_before, _node_rss_kb(run_module, server))
        # Measure in the steady state: the first polls have timed out and gone out again.
        time.sleep(max(0.0, started + s.poll_seconds + 3 - time.monotonic()))
        # What the waiting alone costs the node, before anything else is asked of it.
        bench.waiting_cpu = _node_cpu_share(server, STEADY_SECONDS)
        bench.say(f"waiters: the node's workers used {bench.waiting_cpu:.0%} of a core")
        bench.say(f"waiters: {in_flight} polls in flight after the ramp; measuring")
        _measure(bench, server, sync_server, s, late_id, waiting_ids, agents, layout)
    finally:
        server.stop()
        sync_server.stop()
        run_module.CHILDREN.end(agents)


def _node_cpu_share(server, seconds: float) -> float:
    """CPU time the node's workers used over `seconds` from now, per second of wall time."""

    def used() -> float:
        ticks = 0
        for pid in server.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    before, started = used(), time.monotonic()
    time.sleep(seconds)
    return (used() - before) / (time.monotonic() - started)


def _node_rss_kb(run_module, server) -> int:
    return sum(run_module._status_kb(pid, "VmRSS") or 0 for pid in server.worker_pids())


def _measure(bench, server, sync_server, s, late_id, waiting_ids, agents, layout) -> None:
    from django.contrib.auth.models import User

    from approvals.services.review import packet_approve

    run = _run_module(bench)
    Figure, load, _latencies = run.Figure, run.load, run._latencies

    auth = {"Authorization": f"Bearer {bench.token}"}
    connections = node_connections(bench.db)
    late = _attempt(
        bench,
        "late poll",
        lambda: load(
            {
                "kind": "sequential",
                "url": server.url,
                "path": f"/api/v1/approvals/{late_id}?wait={s.poll_seconds}",
                "headers": auth,
                "warmup": 3,
                "count": s.late_polls,
                "max_seconds": 60,
            },
            env=bench.env,
            timeout=300,
        ),
    )
    headers = {**auth, "Content-Type": "application/json"}
    gate = _attempt(
        bench,
        "gate while agents wait",
        lambda: load(
            {
                **bench._gate_job(sync_server, "gate", "waiting", 64, s.gate_seconds, headers),
                "kind": "rate",
                "rate": s.gate_rate,
                "threads": 64,
            },
            env=bench.env,
            timeout=s.gate_seconds + 300,
        ),
    )
    cookie, _ = bench.session_cookie(bench.users["reviewer"])
    queue = _attempt(
        bench,
        "queue page while agents wait",
        lambda: load(
            {
                "kind": "sequential",
                "url": sync_server.url,
                "path": "/approvals/",
                "headers": {"Cookie": cookie},
                "warmup": 3,
                "count": s.page_requests,
                "max_seconds": 60,
            },
            env=bench.env,
            timeout=300,
        ),
    )
    connections = max(connections, node_connections(bench.db))
    reviewer = User.objects.get(username="reviewer")
    committed = {}
    for packet_id in waiting_ids[: s.decided]:
        packet_approve(packet_id=packet_id, user=reviewer)
        committed[packet_id] = time.time()
    time.sleep(3)
    agents.stdin.write("finish\n")
    agents.stdin.flush()
    result = json.loads(_read_line(agents, 60))
    wakes = sorted(
        1000 * (result["decided_at"][i] - committed[i]) if i in result["decided_at"] else 1e9
        for i in committed
    )
    missed = sum(1 for w in wakes if w >= 1e9)
    agents_n = len(waiting_ids)
    held = result["in_flight_at_ready"] - result["refused"] - result["errors"]
    while_waiting = f"while {agents_n:,} agents long-poll the same node ({layout})"
    bench.record(
        Figure(
            "waiters_held",
            "ratio",
            held,
            agents_n,
            f"Agents, one per pending packet, each long-polling GET /api/v1/approvals/{{id}}"
            f"?wait={s.poll_seconds} and again with seen=pending as GatekeeperClient.wait() "
            f"does, from a separate asyncio process (bench/waiting_load.py), {layout}; started "
            f"{s.ramp_per_s:.0f} a second. The figure is the polls in flight once all have "
            "started, less every refused (503) or failed poll of the whole run.",
            f"in flight after the ramp {result['in_flight_at_ready']}, peak "
            f"{result['peak_in_flight']}, {result['polls']} polls in all, answers "
            f"{result['statuses']}, refused {result['refused']}, errors {result['errors']}; "
            f"the node's workers' RSS {bench.waiter_rss_kb[0] / 1024:.0f} MiB before the ramp, "
            f"{bench.waiter_rss_kb[1] / 1024:.0f} MiB after: "
            f"{(bench.waiter_rss_kb[1] - bench.waiter_rss_kb[0]) / max(1, held):.0f} KiB a waiter; "
            f"with only the agents re-polling, the workers used {bench.waiting_cpu:.0%} of a "
            f"core over {STEADY_SECONDS} s",
        )
    )
    bench.record(
        Figure(
            "wake_p99_ms",
            "limit",
            _p(wakes, 99),
            500,
            f"{s.decided} packets approved one after another through the review service "
            f"(packet_approve) in the bench process, {while_waiting}: from each decision's "
            "commit to its agent's answer arriving (wall clock of one machine).",
            f"p50 {_p(wakes, 50):.0f} ms, p99 {_p(wakes, 99):.0f} ms, max {wakes[-1]:.0f} ms; "
            f"{missed} never answered",
        )
    )
    record = _recorder(bench, Figure)
    record(
        gate,
        Figure(
            "gate_p99_ms_waiting",
            "limit",
            gate and gate["p99_ms"],
            50,
            f"Allowed gate checks open-loop at {s.gate_rate:.0f}/s for {s.gate_seconds:.0f} s "
            f"(as gate_p99_ms) {while_waiting}.",
            gate and _latencies(gate) + f", {gate['unsent']} given up unsent",
        ),
    )
    record(
        queue,
        Figure(
            "queue_p95_ms_waiting",
            "limit",
            queue and queue["p95_ms"],
            200,
            f"GET /approvals/ by the reviewer, one at a time, {s.page_requests} requests after 3 "
            f"unmeasured (as queue_p95_ms), {while_waiting}.",
            queue and _latencies(queue),
        ),
    )
    bench.record(
        Figure(
            "waiting_pg_connections",
            "limit",
            connections,
            20,
            f"PostgreSQL sessions of the node (pg_stat_activity, by application_name), the most "
            f"seen before and after the gate and queue measurements, {while_waiting}.",
            f"{connections} sessions",
        )
    )
    record(
        late,
        Figure(
            "late_poll_ms",
            "limit",
            late and late["p95_ms"],
            50,
            f"p95 of GET /api/v1/approvals/{{id}}?wait={s.poll_seconds} for a packet already "
            f"approved, one at a time, {s.late_polls} after 3 unmeasured, {while_waiting}.",
            late and _latencies(late),
        ),
    )


def _attempt(bench, what: str, measure):
    """One measurement's result, or None (said, and counted as a failure) when it failed."""
    try:
        result = measure()
        bench._expect_ok(result, what)
        return result
    except Exception as error:  # noqa: BLE001 (one broken measurement must not hide the rest)
        bench.say(f"{what} failed: {error}"[:300])
        bench.failures.append(what)
        return None


def _recorder(bench, Figure):
    def record(result, figure) -> None:
        if result is None:
            figure = Figure(figure.name, figure.kind, None, figure.target, figure.method)
            figure.skipped = "failed: see the log"
        bench.record(figure)

    return record


def _p(values: list[float], p: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, int(p) - 1)]


def _fresh_account(bench) -> None:
    """A new `bench` service account: the next gate rounds' keys and steps are new ones (the
    floor finds its account by that name)."""
    from approvals.models import ServiceAccount
    from approvals.services.service_accounts import service_account_create

    ServiceAccount.objects.filter(id=bench.account.id).update(name=f"bench-{bench.account.id}")
    bench.account, bench.token = service_account_create(name="bench")


def main(argv=None) -> int:
    """The phase alone, once per number of agents: `python -m bench.waiters --agents 10,500`."""
    import argparse
    import atexit
    import re
    import signal

    from bench import run as run_module

    parser = argparse.ArgumentParser(prog="python -m bench.waiters", description=main.__doc__)
    parser.add_argument("--agents", default="10000", help="comma-separated counts (10000)")
    parser.add_argument("--quick", action="store_true", help="bench/run --quick's data")
    parser.add_argument("--db", default="gk_bench_waiters", help="database (dropped and made)")
    parser.add_argument(
        "--gate", action="store_true", help="first the gate figures on gthread, then on ASGI"
    )
    parser.add_argument("--logs", help="a directory to copy the servers' logs to at the end")
    parser.add_argument(
        "--layouts",
        default="one",
        help="comma-separated, each measured in turn for every count: one (the ASGI node "
        "serves everything) or split (gate checks and pages on a gthread server beside it)",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"gk_bench\w*", args.db):
        parser.error("the database name must start with gk_bench (it is dropped and made again)")
    signal.signal(signal.SIGTERM, run_module._on_signal)
    signal.signal(signal.SIGINT, run_module._on_signal)
    atexit.register(run_module.CHILDREN.end_all)
    bench = run_module.Bench("quick" if args.quick else "smoke", args.db, False, {"waiters"})
    bench.failures = []
    try:
        bench.setup()
        if args.gate:
            bench.capture_gate_sql()
            for kind in ("gthread", "asgi"):
                bench.say(f"--- gate on {kind}")
                bench.server_kind = kind
                bench.guarded("gate_vs_floor", "ratio", 0.7, "", bench.gate)
                bench.server.stop()
                bench.server = None
                _fresh_account(bench)
        for count in (int(n) for n in args.agents.split(",") if n):
            for layout in args.layouts.split(","):
                bench.say(f"--- {count} agents, layout {layout}")
                bench.guarded(
                    "waiters_held",
                    "ratio",
                    count,
                    "",
                    lambda c=count, split=layout == "split": run(bench, c, split),
                )
        return 1 if bench.failures else 0
    finally:
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for log in bench.work.glob("*.log"):
                shutil.copy(log, Path(args.logs) / log.name)
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
