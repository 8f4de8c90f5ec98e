"""The load generator: a separate process that only ever talks HTTP to 127.0.0.1.

Standard library only (no Django), so what it costs is plain socket and thread work, the same
for every server it drives. It reads one JSON job from stdin and writes one JSON result to
stdout. Every job is bounded twice: by a duration and by a request count, and the whole process
by HARD_SECONDS.

Jobs:
- closed: N threads, each sending its next request as soon as the last one answered.
- rate: requests scheduled at a fixed rate (open loop); latency runs from the scheduled moment,
  so a slow server cannot hide its queue (no coordinated omission).
- sequential: one request after another, for page latency.
- race: clients approving and rejecting random packets on several servers at once.
- fetch: one streamed GET, counting bytes and newlines.
"""

import http.client
import json
import os
import random
import sys
import threading
import time
from urllib.parse import urlsplit

HARD_SECONDS = 900
MAX_REQUESTS = 2_000_000
ALLOWED_HOST = "127.0.0.1"


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != ALLOWED_HOST:
        raise SystemExit(f"load.py only sends traffic to http://{ALLOWED_HOST}, not {url}")
    return parts.hostname, parts.port or 80


class Client:
    """One keep-alive connection that reopens itself when the server closes it."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.host, self.port = _target(url)
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                # A keep-alive connection the server had just closed: retry once on a new one.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def run_together(worker, count: int) -> None:
    """worker(0) ... worker(count - 1), each in a thread of its own, until all return."""
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=HARD_SECONDS)


def summary(latencies: list[float], statuses: dict, elapsed: float, errors: int) -> dict:
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed_s": elapsed,
        "per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "statuses": statuses,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
    }


def _render(template: str, **values) -> bytes:
    return (
        template.replace("{client}", str(values["client"]))
        .replace("{n}", str(values["n"]))
        .encode()
    )


def job_closed(job: dict) -> dict:
    """Throughput: `threads` clients back to back for `seconds` (after `warmup` seconds)."""
    threads = int(job["threads"])
    seconds = float(job["seconds"])
    warmup = float(job.get("warmup", 0))
    limit = min(int(job.get("max_requests", MAX_REQUESTS)), MAX_REQUESTS)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    sent = 0
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    def worker(index: int):
        nonlocal errors, sent
        client = Client(job["url"])
        n = 0
        while True:
            now = time.perf_counter()
            with lock:
                if now >= stop_at or sent >= limit:
                    break
                sent += 1
            n += 1
            body = (
                _render(job["body"], client=f"{job['tag']}-{index}", n=n)
                if job.get("body")
                else None
            )
            t0 = time.perf_counter()
            try:
                status, _ = client.request(job["method"], job["path"], body, job["headers"])
            except OSError:
                with lock:
                    errors += 1
                continue
            t1 = time.perf_counter()
            if t0 >= measure_from and t1 <= stop_at:
                with lock:
                    latencies.append(t1 - t0)
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
        client.close()

    run_together(worker, threads)
    return summary(latencies, statuses, seconds, errors)


def job_rate(job: dict) -> dict:
    """Latency at a fixed rate: request i is due at start + i / rate, whoever sends it.

    A server slower than the rate would make the queue, and this job, grow without end: past
    `drain` seconds after the last request was due, what is still unsent is not sent, and counts
    as `unsent` with the time it had waited so far (a lower bound of its latency).
    """
    rate = float(job["rate"])
    seconds = float(job["seconds"])
    total = min(int(rate * seconds), MAX_REQUESTS)
    threads = int(job.get("threads", 64))
    lock = threading.Lock()
    latencies: list[float] = []
    by_second: dict[int, list[float]] = {}  # latencies by the second they were due in
    statuses: dict[str, int] = {}
    errors = unsent = 0
    next_index = 0
    started = time.perf_counter() + 0.2
    give_up_at = started + seconds + float(job.get("drain", 10))

    def worker(index: int):
        nonlocal errors, next_index, unsent
        client = Client(job["url"])
        while True:
            with lock:
                i = next_index
                next_index += 1
            if i >= total:
                break
            due = started + i / rate
            now = time.perf_counter()
            if now > give_up_at:
                with lock:
                    unsent += 1
                    latencies.append(now - due)
                continue
            if due > now:
                time.sleep(due - now)
            body = _render(job["body"], client=f"{job['tag']}-{index}", n=i)
            try:
                status, _ = client.request(job["method"], job["path"], body, job["headers"])
            except OSError:
                with lock:
                    errors += 1
                continue
            done = time.perf_counter()
            with lock:
                latencies.append(done - due)
                by_second.setdefault(int(due - started), []).append(done - due)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        client.close()

    run_together(worker, threads)
    elapsed = time.perf_counter() - started
    result = summary(latencies, statuses, elapsed, errors)
    result["target_rate"] = rate
    result["unsent"] = unsent
    result["per_s"] = (len(latencies) - unsent) / elapsed if elapsed > 0 else 0.0
    # Whether the tail is steady or one stall: the worst latency of each second, in ms.
    result["max_ms_by_second"] = [
        round(1000 * max(by_second[second]), 1) for second in sorted(by_second)
    ]
    return result


def job_sequential(job: dict) -> dict:
    """`count` requests one after the other (after `warmup` unmeasured ones)."""
    client = Client(job["url"])
    latencies, statuses, errors = [], {}, 0
    count = min(int(job["count"]), MAX_REQUESTS)
    deadline = time.perf_counter() + float(job.get("max_seconds", 300))
    for i in range(int(job.get("warmup", 0)) + count):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        try:
            status, _ = client.request("GET", job["path"], None, job["headers"])
        except OSError:
            errors += 1
            continue
        if i >= int(job.get("warmup", 0)):
            latencies.append(time.perf_counter() - t0)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    client.close()
    return summary(latencies, statuses, sum(latencies), errors)


def job_race(job: dict) -> dict:
    """Reviewers racing on shared packets, each client on one of the servers.

    Client i uses servers[i % len(servers)] and reviewer i; it picks a random packet and
    approves it (or, one time in `reject_one_in`, rejects it) until the time is up.
    """
    servers = job["servers"]
    packets = job["packets"]
    reviewers = job["reviewers"]
    seconds = float(job["seconds"])
    reject_one_in = int(job.get("reject_one_in", 4))
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    def worker(index: int):
        nonlocal errors
        reviewer = reviewers[index % len(reviewers)]
        client = Client(servers[index % len(servers)])
        rng = random.Random(index)  # noqa: S311 (which packet to race on, not a secret)
        headers = {
            "Cookie": reviewer["cookie"],
            "X-CSRFToken": reviewer["csrf"],
            "Content-Type": "application/x-www-form-urlencoded",
        }
        while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS:
            packet = rng.choice(packets)
            action = "reject" if rng.randrange(reject_one_in) == 0 else "approve"
            t0 = time.perf_counter()
            try:
                status, _ = client.request(
                    "POST", f"/approvals/{packet}/{action}/", b"comment=race", headers
                )
            except OSError:
                with lock:
                    errors += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)
                key = f"{action}:{status}"
                statuses[key] = statuses.get(key, 0) + 1
        client.close()

    run_together(worker, job["clients"])
    return summary(latencies, statuses, seconds, errors)


def job_fetch(job: dict) -> dict:
    """One GET, read to the end in chunks and thrown away: bytes, newlines, seconds."""
    host, port = _target(job["url"])
    conn = http.client.HTTPConnection(host, port, timeout=float(job.get("timeout", 600)))
    t0 = time.perf_counter()
    conn.request("GET", job["path"], headers=job["headers"])
    response = conn.getresponse()
    size = newlines = 0
    first_byte = None
    while chunk := response.read(1 << 16):
        if first_byte is None:
            first_byte = time.perf_counter() - t0
        size += len(chunk)
        newlines += chunk.count(b"\n")
    elapsed = time.perf_counter() - t0
    conn.close()
    return {
        "status": response.status,
        "content_type": response.getheader("Content-Type"),
        "bytes": size,
        "newlines": newlines,
        "elapsed_s": elapsed,
        "first_byte_s": first_byte,
    }


JOBS = {
    "closed": job_closed,
    "rate": job_rate,
    "sequential": job_sequential,
    "race": job_race,
    "fetch": job_fetch,
}


def main() -> None:
    job = json.load(sys.stdin)
    timer = threading.Timer(HARD_SECONDS, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    json.dump(JOBS[job["kind"]](job), sys.stdout)


if __name__ == "__main__":
    main()
