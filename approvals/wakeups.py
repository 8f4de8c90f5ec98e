"""Wake long-polling orchestrators when a packet changes (PostgreSQL LISTEN/NOTIFY).

pg_notify inside the business transaction is delivered only when it commits, and never when it
rolls back: a waiter can never see a change that did not happen. Every change goes to one
channel with the packet's id as payload, so a process LISTENs once for all its waiters.
"""

import uuid
from collections.abc import Iterable

from django.db import connection

CHANNEL = "gatekeeper_packets"


def payload_for(packet_id) -> str:
    return str(uuid.UUID(str(packet_id)))


def wake_waiters(packet_ids: Iterable) -> None:
    """Wake every process waiting on these packets, once the caller's transaction commits."""
    payloads = [payload_for(packet_id) for packet_id in packet_ids]
    if payloads:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", [CHANNEL, payloads]
            )
