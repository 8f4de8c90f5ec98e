"""Long-polling for a packet to leave a status, on a WSGI thread (the asynchronous path is in
approvals/api/waiting.py; this one serves the same URL where no ASGI server runs it).

Each waiter LISTENs over its own short-lived connection, re-reads the status after LISTEN (so a
change committed in between is not missed), then sleeps in the kernel until a NOTIFY for its
packet or the timeout. A process-wide bound on seats limits how many wait at once: past it a
request is refused with the moment the first seat frees (Busy, 503 with Retry-After).
"""

import math
import threading
import time

import psycopg
from django.conf import settings
from django.db import connection

from approvals.errors import Busy
from approvals.wakeups import CHANNEL, payload_for


class Seats:
    """At most `size` waiters at once, each until its deadline; thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._deadlines: dict[int, float] = {}
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._deadlines)

    def take(self, seconds: float) -> int:
        """A seat until `seconds` from now, or Busy saying when the first one frees."""
        seat = self.try_take(seconds)
        if seat is None:
            raise self.busy()
        return seat

    def try_take(self, seconds: float) -> int | None:
        with self._lock:
            if len(self._deadlines) >= self.size:
                return None
            self._next += 1
            self._deadlines[self._next] = time.monotonic() + seconds
            return self._next

    def busy(self) -> Busy:
        with self._lock:
            deadlines = list(self._deadlines.values())
        first_free = min(deadlines, default=0) - time.monotonic()
        return Busy(
            "too many requests are waiting here; come back later",
            retry_after=max(1, math.ceil(first_free)),
        )

    def give_back(self, seat: int) -> None:
        with self._lock:
            self._deadlines.pop(seat, None)


_seats: Seats | None = None
_seats_lock = threading.Lock()


def _sync_seats() -> Seats:
    global _seats
    with _seats_lock:
        if _seats is None:
            _seats = Seats(settings.GATEKEEPER_MAX_LONG_POLLS)
        return _seats


def _status(conn: psycopg.Connection, packet_id) -> str | None:
    row = conn.execute(
        "SELECT status FROM approvals_pausepacket WHERE id = %s", [packet_id]
    ).fetchone()
    return row[0] if row else None


def listen_params() -> dict:
    """psycopg.connect() arguments for a connection of our own to Django's database."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "server_side_binding", "pool"):
        params.pop(key, None)
    return params


def wait_for_status_change(packet_id, status: str, timeout: float) -> None:
    """Block until the packet's status differs from `status`, or `timeout` seconds pass.

    Raises Busy when too many requests of this process wait already.
    """
    seats = _sync_seats()
    seat = seats.take(timeout)
    try:
        mine = payload_for(packet_id)
        with psycopg.connect(**listen_params(), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            deadline = time.monotonic() + timeout
            while _status(conn, packet_id) == status:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Sleeps in the kernel until a NOTIFY for this packet or the time is up.
                for notice in conn.notifies(timeout=remaining):
                    if notice.payload == mine:
                        break
    finally:
        seats.give_back(seat)
