"""Expiry: nothing is ever approved by time passing; an overdue packet is rejected as expired."""

from django.db import connection
from django.utils import timezone

from approvals.events import EventKind
from approvals.models import OPEN_STATUSES, Decision, PacketStatus, PausePacket, sql_list
from approvals.services.changes import packets_changed
from approvals.services.transactions import action_atomic
from audit.services import LOCK_CHAIN_SQL, chain_append_sql

# A UTC datetime as DjangoJSONEncoder writes it, so the record reads as when Python rendered the
# event: ISO 8601, milliseconds (truncated) only when there are microseconds, "Z" for UTC.
_JSON_DATETIME = (
    "to_char({t} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN to_char({t} AT TIME ZONE 'UTC', 'US') = '000000' THEN ''"
    " ELSE to_char({t} AT TIME ZONE 'UTC', '.MS') END || 'Z'"
)

# One statement a batch: claim, expire, and chain the packet.expired events, all in PostgreSQL.
# Nothing travels to Python but each packet's id and whether anyone must be told (a callback
# URL, or a requester), so the outbox is read only for those packets.
# What a packet.expired event says, whether the sweep found it or a reviewer noticed it first
# (who noticed is then added as noticed_by).
EXPIRED_REASON = "decision deadline passed"


def expired_event_data(packet: PausePacket) -> dict:
    """The data of packet.expired beyond packet_close's own; the sweep writes the same in SQL."""
    return {"expires_at": packet.expires_at, "reason": EXPIRED_REASON}


_EXPIRE_BATCH = f"""
WITH claimed AS (
    UPDATE approvals_pausepacket AS p
       SET status = '{PacketStatus.EXPIRED}', branch = NULL, decision = '{Decision.BLOCK}',
           decided_at = %(now)s, decided_by = '[]'::jsonb
     WHERE p.id IN (
           SELECT id FROM approvals_pausepacket
            WHERE status IN ({sql_list(OPEN_STATUSES)}) AND expires_at <= %(now)s
            ORDER BY expires_at
            LIMIT %(batch)s
              FOR UPDATE SKIP LOCKED)
    RETURNING p.id, p.execution_id, p.expires_at, p.status, p.decision, p.requested_by_id,
              p.on_behalf_of),
expired_events AS (
    SELECT %(at)s::timestamptz AS at, %(kind)s::text AS kind, 'system'::text AS actor,
           c.execution_id, c.id AS packet_id,
           jsonb_build_object(
               'status', c.status,
               'branch', NULL,
               'decision', c.decision,
               'decided_by', '[]'::jsonb,
               'comment', '',
               'expires_at', {_JSON_DATETIME.format(t="c.expires_at")},
               'reason', %(reason)s::text) AS data,
           row_number() OVER (ORDER BY c.expires_at, c.id) AS ord
      FROM claimed AS c),
{chain_append_sql("expired_events")}
SELECT c.id, c.on_behalf_of <> '' OR a.callback_url <> ''
  FROM claimed AS c JOIN approvals_serviceaccount AS a ON a.id = c.requested_by_id
"""  # noqa: S608 (composed from constants only)


def packets_expire_overdue(*, now=None, batch_size: int = 1000) -> int:
    """Expire every open packet past its deadline, in set-based batches; returns how many.

    SKIP LOCKED lets several sweepers (and reviewers holding a row) work side by side: a row
    somebody else holds is theirs to decide, and the next sweep sees it if it is still open.
    Each batch takes the chain lock before its one statement, whose snapshot then reads the
    true head of the record; skipping locked rows, it never waits on a reviewer who holds a
    packet and waits for the chain.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with action_atomic(), connection.cursor() as cursor:
            cursor.execute(LOCK_CHAIN_SQL)
            cursor.execute(
                _EXPIRE_BATCH,
                {
                    "now": now,
                    "batch": batch_size,
                    "at": timezone.now(),
                    "kind": EventKind.PACKET_EXPIRED,
                    "reason": EXPIRED_REASON,
                },
            )
            rows = cursor.fetchall()
            to_tell = [packet_id for packet_id, tell in rows if tell]
            packets_changed(
                list(
                    PausePacket.objects.filter(id__in=to_tell).select_related(
                        "execution", "requested_by"
                    )
                )
                if to_tell
                else [],
                untold_ids=[packet_id for packet_id, tell in rows if not tell],
            )
        total += len(rows)
        if len(rows) < batch_size:
            return total
