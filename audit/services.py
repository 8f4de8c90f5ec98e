"""Appending to the decision record."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from audit.chain import DOCUMENT_SQL, GENESIS_HASH, chain_hash
from audit.models import AuditEvent

# Any constant works; it names the one lock that serialises the head of the chain.
CHAIN_LOCK_KEY = 0x6A7E_4B33

_COLUMNS = "t.id, t.at, t.kind, t.actor, t.execution_id, t.packet_id, t.data"
_UNNEST = (
    "unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::text[], %s::uuid[], %s::uuid[],"
    " %s::jsonb[]) AS t(id, at, kind, actor, execution_id, packet_id, data)"
)
# PostgreSQL renders each row's document: exactly what the verifier will render later.
# Composed from constants only; every value travels as a parameter.
_DOCUMENTS = f"SELECT {DOCUMENT_SQL.format(p='t.')} FROM {_UNNEST} ORDER BY t.id"
_INSERT = (
    "INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data,"
    " prev_hash, hash) "
    "SELECT " + _COLUMNS + ", h.prev_hash, h.hash FROM " + _UNNEST + " "
    "JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS h(id, prev_hash, hash) ON h.id = t.id"
)


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    execution_id: Any = None
    packet_id: Any = None


def record_events(events: Iterable[Event]) -> list[AuditEvent]:
    """Append events to the chain, in order, inside the caller's transaction.

    The transaction-level advisory lock is held until the caller commits, so the next writer
    reads a head that is already durable: the chain never forks, and a rolled-back change leaves
    no event behind.
    """
    events = list(events)
    if not events:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("audit events must be written inside the transaction of their change")
    now = timezone.now()
    payloads = [json.dumps(e.data, cls=DjangoJSONEncoder, allow_nan=False) for e in events]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        cursor.execute("SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1")
        head = cursor.fetchone()
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('audit_auditevent', 'id')) "
            "FROM generate_series(1, %s)",
            [len(events)],
        )
        seqs = [seq for (seq,) in cursor.fetchall()]
        columns = [
            seqs,
            [now] * len(events),
            [e.kind for e in events],
            [e.actor for e in events],
            [e.execution_id for e in events],
            [e.packet_id for e in events],
            payloads,
        ]
        cursor.execute(_DOCUMENTS, columns)
        prev = head[0] if head else GENESIS_HASH
        prev_hashes, hashes = [], []
        for (document,) in cursor.fetchall():
            prev_hashes.append(prev)
            prev = chain_hash(prev, document)
            hashes.append(prev)
        cursor.execute(_INSERT, [*columns, seqs, prev_hashes, hashes])
    return [
        AuditEvent(
            id=seq,
            at=now,
            kind=e.kind,
            actor=e.actor,
            execution_id=e.execution_id,
            packet_id=e.packet_id,
            data=json.loads(payload),
            prev_hash=prev_hash,
            hash=digest,
        )
        for seq, e, payload, prev_hash, digest in zip(
            seqs, events, payloads, prev_hashes, hashes, strict=True
        )
    ]


def record_event(
    kind: str, *, actor: str, data: dict | None = None, execution_id=None, packet_id=None
) -> AuditEvent:
    """Append one event; see record_events."""
    return record_events(
        [
            Event(
                kind=kind,
                actor=actor,
                data=data or {},
                execution_id=execution_id,
                packet_id=packet_id,
            )
        ]
    )[0]
