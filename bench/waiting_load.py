"""The waiting agents: one asyncio process holding thousands of long-polls on 127.0.0.1.

Standard library only. Reads one JSON job line from stdin: `url`, `token`, `packets` (one agent
per packet id), `wait` (seconds per poll), `ramp_per_s` (agents started per second), `seconds`
(the whole run, at most HARD_SECONDS). Each agent does what GatekeeperClient.wait() does:
GET /api/v1/approvals/{id}?wait=N, again with `seen=pending` while the answer is pending,
after Retry-After when refused, until its packet is decided. Once every agent has sent its
first poll it prints `ready <in flight>`; a line `finish` on stdin (or the time) ends the run,
and the result is one JSON line: counts, the most polls in flight at once, and when each
decided packet's answer arrived (time.time(), to compare with the decisions' commits).
"""

import asyncio
import contextlib
import json
import resource
import sys
import time
from urllib.parse import urlsplit

HARD_SECONDS = 900
ALLOWED_HOST = "127.0.0.1"
CONNECTIONS_MAX = 20_000


class Tally:
    def __init__(self):
        self.in_flight = 0
        self.peak = 0
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.refused = 0
        self.polls = 0
        self.decided_at: dict[str, float] = {}

    def sent(self):
        self.polls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before answering")
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    else:
        body = await reader.read()
    return status, headers, body


async def agent(job: dict, packet: str, tally: Tally, stop: asyncio.Event) -> None:
    host, port = job["host"], job["port"]
    seen = ""
    connection = None
    while not stop.is_set():
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, port)
            reader, writer = connection
            query = f"wait={job['wait']}" + (f"&seen={seen}" if seen else "")
            writer.write(
                f"GET /api/v1/approvals/{packet}?{query} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {job['token']}\r\n\r\n".encode()
            )
            tally.sent()
            try:
                status, headers, body = await _read_answer(reader)
            finally:
                tally.in_flight -= 1
            answered = time.time()
            tally.statuses[str(status)] = tally.statuses.get(str(status), 0) + 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                connection = None
            if status == 503:
                tally.refused += 1
                await _pause(stop, float(headers.get("retry-after", "1")))
            elif status == 200:
                now_status = json.loads(body)["status"]
                if now_status != "pending":
                    tally.decided_at[packet] = answered
                    break
                seen = "pending"
            else:
                tally.errors += 1
                await _pause(stop, 1.0)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            if connection is not None:
                connection[1].close()
            connection = None
            await _pause(stop, 1.0)
    if connection is not None:
        connection[1].close()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _finish_when_told(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "finish":
            stop.set()


async def run(job: dict) -> dict:
    tally = Tally()
    stop = asyncio.Event()
    tasks = []
    started = time.monotonic()
    interval = 1.0 / float(job["ramp_per_s"])
    for i, packet in enumerate(job["packets"]):
        due = started + i * interval
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(agent(job, packet, tally, stop)))
    await asyncio.sleep(1.0)  # the last ones' requests are on their way
    print(f"ready {tally.in_flight}", flush=True)
    ready_in_flight = tally.in_flight
    finisher = asyncio.create_task(_finish_when_told(stop))
    remaining = float(job["seconds"]) - (time.monotonic() - started)
    await _pause(stop, max(0.0, remaining))
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    finisher.cancel()
    return {
        "agents": len(job["packets"]),
        "in_flight_at_ready": ready_in_flight,
        "peak_in_flight": tally.peak,
        "polls": tally.polls,
        "statuses": tally.statuses,
        "refused": tally.refused,
        "errors": tally.errors,
        "decided_at": tally.decided_at,
        "ramp_s": len(job["packets"]) * interval,
    }


def main() -> None:
    job = json.loads(sys.stdin.readline())
    parts = urlsplit(job["url"])
    if parts.scheme != "http" or parts.hostname != ALLOWED_HOST:
        raise SystemExit(f"waiting_load.py only sends traffic to http://{ALLOWED_HOST}")
    if len(job["packets"]) > CONNECTIONS_MAX:
        raise SystemExit(f"at most {CONNECTIONS_MAX} agents")
    job["host"], job["port"] = parts.hostname, parts.port
    job["seconds"] = min(float(job["seconds"]), HARD_SECONDS - 30)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < len(job["packets"]) + 100:
        raise SystemExit(f"the descriptor limit ({hard}) is below one per agent")
    result = asyncio.run(asyncio.wait_for(run(job), HARD_SECONDS))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
