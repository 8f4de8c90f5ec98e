"""Wake long-polling orchestrators when a packet changes (PostgreSQL LISTEN/NOTIFY).

pg_notify inside the business transaction is delivered only when it commits, and never when it
rolls back: a waiter can never see a change that did not happen.
"""

from collections.abc import Iterable

from django.db import connection


def channel_for(packet_id) -> str:
    return f"approval_{str(packet_id).replace('-', '')}"


def notify_packets_changed(packet_ids: Iterable) -> None:
    channels = [channel_for(packet_id) for packet_id in packet_ids]
    if channels:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(c, '') FROM unnest(%s::text[]) AS c", [channels])
