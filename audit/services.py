"""Appending to the decision record."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from audit.chain import GENESIS_HASH, chain_hash, row_document
from audit.models import AuditEvent

# Any constant works; it names the one lock that serialises the head of the chain.
CHAIN_LOCK_KEY = 0x6A7E_4B33


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
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        cursor.execute("SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('audit_auditevent', 'id')) "
            "FROM generate_series(1, %s)",
            [len(events)],
        )
        seqs = [seq for (seq,) in cursor.fetchall()]
        # Hash the payloads exactly as jsonb will give them back: it rewrites some numbers
        # (1e+20 becomes 100000000000000000000, -0.0 becomes 0.0), so Python's own form is not it.
        cursor.execute(
            "SELECT d::jsonb::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(d, n) ORDER BY n",
            [[json.dumps(event.data, cls=DjangoJSONEncoder, allow_nan=False) for event in events]],
        )
        payloads = [json.loads(text) for (text,) in cursor.fetchall()]
    prev = row[0] if row else GENESIS_HASH
    now = timezone.now()
    rows = []
    for seq, event, data in zip(seqs, events, payloads, strict=True):
        document = row_document(
            seq=seq,
            at=now,
            kind=event.kind,
            actor=event.actor,
            execution_id=event.execution_id,
            packet_id=event.packet_id,
            data=data,
        )
        digest = chain_hash(prev, document)
        rows.append(
            AuditEvent(
                id=seq,
                at=now,
                kind=event.kind,
                actor=event.actor,
                execution_id=event.execution_id,
                packet_id=event.packet_id,
                data=data,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return AuditEvent.objects.bulk_create(rows)


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

