"""Long-polling for a packet to leave its status, without spinning on the database.

Each waiter LISTENs on its packet's channel over its own short-lived connection, re-reads the
status after LISTEN (so a change committed in between is not missed), then sleeps in the
kernel until a NOTIFY or the timeout. A process-wide semaphore bounds how many wait at once:
past the bound a request answers at once instead of holding a thread and a connection.
"""

import threading
import time

import psycopg
from django.conf import settings
from django.db import connection

from approvals.notify import channel_for

_waiters: threading.BoundedSemaphore | None = None
_waiters_lock = threading.Lock()


def _semaphore() -> threading.BoundedSemaphore:
    global _waiters
    with _waiters_lock:
        if _waiters is None:
            _waiters = threading.BoundedSemaphore(settings.GATEKEEPER_MAX_LONG_POLLS)
        return _waiters


def _status(conn: psycopg.Connection, packet_id) -> str | None:
    row = conn.execute(
        "SELECT status FROM approvals_pausepacket WHERE id = %s", [packet_id]
    ).fetchone()
    return row[0] if row else None


def wait_for_status_change(packet_id, status: str, timeout: float) -> bool:
    """Block until the packet's status differs from `status`, or `timeout` seconds pass.

    Returns False when it could not wait because too many requests already are.
    """
    semaphore = _semaphore()
    if not semaphore.acquire(blocking=False):
        return False
    try:
        params = connection.get_connection_params()
        for key in ("cursor_factory", "context", "server_side_binding"):
            params.pop(key, None)
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'LISTEN "{channel_for(packet_id)}"')
            deadline = time.monotonic() + timeout
            while _status(conn, packet_id) == status:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Sleeps in the kernel until a NOTIFY arrives or the time is up.
                for _ in conn.notifies(timeout=remaining, stop_after=1):
                    pass
        return True
    finally:
        semaphore.release()
