"""Appending to the decision record."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import DOCUMENT_SQL, GENESIS_HASH, HASH_SQL
from audit.models import AuditEvent

# Any constant works; it names the one lock that serialises the head of the chain.
CHAIN_LOCK_KEY = 0x6A7E_4B33
LOCK_CHAIN_SQL = f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY})"
# The id column's sequence, named as a constant: pg_get_serial_sequence() is a catalog lookup,
# and PostgreSQL runs it again for every row it numbers (a sweep numbers 1,000 a statement).
# tests/audit/test_chain.py checks the name against the catalog.
ID_SEQUENCE = "audit_auditevent_id_seq"
# The chain lock is held until COMMIT, and COMMIT waits for its WAL flush: one writer at a
# time flushes, so the record's rate is at most 1 / fsync time, and one slow fsync stalls every
# writer queued behind it. A writer whose change nobody acts on before the writer answers (the
# gate check: only its caller learns the answer) may instead commit without waiting, which
# releases the lock at once, and wait for the flush outside the lock before it answers
# (wait_until_durable_on_commit). WAL is flushed in order, so that flush covers the commit, a
# crash can only lose a suffix of the chain, and concurrent writers share one flush. Writers
# whose change others act on as soon as it is visible (an approval, which a long-polling
# agent reads on NOTIFY) keep the plain COMMIT: PostgreSQL shows it only once it is durable.
COMMIT_WITHOUT_WAITING_SQL = "SET LOCAL synchronous_commit = off"
# A transaction of its own that writes WAL, so its COMMIT (synchronous_commit as the server
# sets it, on by default) waits until WAL is flushed past its commit record, hence past every
# commit made before it. It must write: PostgreSQL commits a transaction that wrote no WAL (an
# xid alone) without flushing anything. A transactional logical message is the smallest such
# write; it needs no table, no privilege and no wal_level beyond the default, and logical
# decoding passes it on only to a consumer that asks for messages.
WAIT_FOR_FLUSH_SQL = "SELECT pg_logical_emit_message(true, 'gatekeeper.flush', '')"


def chain_append_sql(source: str) -> str:
    """CTEs that append the rows of CTE `source` to the chain, as CTE `appended`.

    `source` gives columns at, kind, actor, execution_id, packet_id, data and ord; rows get
    their seq in `ord` order and are chained in seq order by the audit_chain aggregate
    (audit/migrations/0004), each hashed from the document PostgreSQL renders for it
    (DOCUMENT_SQL): what verify_audit recomputes. `appended` returns id, prev_hash and hash.
    The caller holds the chain lock (LOCK_CHAIN_SQL) before the statement starts, so the head
    its snapshot reads is the true head. Composed from constants only.
    """
    return f"""
    head AS (
        SELECT coalesce((SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1),
                        '{GENESIS_HASH}') AS hash),
    numbered AS (
        SELECT nextval('{ID_SEQUENCE}') AS id, s.*
          FROM (SELECT * FROM {source} ORDER BY ord) AS s),
    chained AS (
        SELECT n.*, head.hash AS head_hash,
               audit_chain(head.hash, {DOCUMENT_SQL.format(p="n.")}) OVER (ORDER BY n.id) AS hash
          FROM numbered AS n CROSS JOIN head),
    appended AS (
        INSERT INTO audit_auditevent
               (id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash)
        SELECT id, at, kind, actor, execution_id, packet_id, data,
               coalesce(lag(hash) OVER (ORDER BY id), head_hash), hash
          FROM chained
        RETURNING id, prev_hash, hash)"""


_APPEND_EVENTS = (
    "WITH events AS ("
    " SELECT %s::timestamptz AS at, t.kind, t.actor, t.execution_id, t.packet_id, t.data, t.ord"
    " FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::uuid[], %s::jsonb[]) WITH ORDINALITY"
    " AS t(kind, actor, execution_id, packet_id, data, ord)),"
    + chain_append_sql("events")
    + " SELECT id, prev_hash, hash FROM appended ORDER BY id"
)
# One event, the common case (every gate check): the same row and hash (HASH_SQL is the
# formula audit_chain applies) from a statement cheaper than the window-aggregate form, and it
# runs under the chain lock (figures: bench/PROFILES.md, "Figures behind the code").
_APPEND_ONE = (
    "INSERT INTO audit_auditevent"  # noqa: S608 (constants only; values are parameters)
    " (id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash)"
    " SELECT r.id, r.at, r.kind, r.actor, r.execution_id, r.packet_id, r.data, r.prev_hash, "
    + HASH_SQL.format(p="r.")
    + f" FROM (SELECT nextval('{ID_SEQUENCE}') AS id,"
    " %(event_at)s::timestamptz AS at, %(event_kind)s::text AS kind,"
    " %(event_actor)s::text AS actor, %(event_execution_id)s::uuid AS execution_id,"
    " %(event_packet_id)s::uuid AS packet_id, %(event_data)s::jsonb AS data,"
    " coalesce((SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1),"
    f" '{GENESIS_HASH}') AS prev_hash"
)


def lock_and_append_one_sql(when: str = "TRUE") -> str:
    """Two statements, sent as one round trip: the chain lock, then the append of one event.

    Named parameters, from event_parameters. Django's client-side binding sends the two as one
    simple query, and the append is a statement of its own, so its snapshot is taken once the
    lock is granted. `when` is an SQL condition (it may use the caller's named parameters):
    when it is false, no lock is taken and no row written, for a caller whose own statement,
    sent first in the same round trip, decides whether there is anything to record.
    """
    return (
        f"{LOCK_CHAIN_SQL} WHERE {when}; "
        f"{_APPEND_ONE} WHERE {when}) AS r RETURNING id, prev_hash, hash"
    )


_LOCK_AND_APPEND_ONE = lock_and_append_one_sql()
# Several events: the same, through the audit_chain window aggregate (positional parameters).
_LOCK_AND_APPEND_EVENTS = f"{LOCK_CHAIN_SQL}; {_APPEND_EVENTS}"


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    execution_id: Any = None
    packet_id: Any = None


def record_events(events: Iterable[Event]) -> list[AuditEvent]:
    """Append events to the chain, in order, inside the caller's transaction.

    One round trip whatever the number of events: the chain lock, then one INSERT that hashes
    in PostgreSQL. The transaction-level advisory lock is held until the caller commits, so the
    next writer reads a committed head: the chain never forks, and a rolled-back change leaves
    no event behind. Append last in a transaction, so the lock is held briefly.
    """
    events = list(events)
    if not events:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("audit events must be written inside the transaction of their change")
    now = timezone.now()
    payloads = [_payload(e) for e in events]
    if len(events) == 1:  # scalars: no arrays for psycopg to build and PostgreSQL to parse
        sql, parameters = _LOCK_AND_APPEND_ONE, event_parameters(events[0], now, payloads[0])
    else:
        sql = _LOCK_AND_APPEND_EVENTS
        parameters = [
            now,
            [e.kind for e in events],
            [e.actor for e in events],
            [e.execution_id for e in events],
            [e.packet_id for e in events],
            payloads,
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        cursor.nextset()  # past the lock's result, to the appended rows
        rows = cursor.fetchall()
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
        for (seq, prev_hash, digest), e, payload in zip(rows, events, payloads, strict=True)
    ]


def wait_until_durable_on_commit() -> None:
    """Once the caller's transaction commits, wait for the WAL flush; once per transaction.

    For a transaction that sent COMMIT_WITHOUT_WAITING_SQL, or that read what one committed:
    it runs before the caller returns, so its caller never hears of a change that a crash
    could still take back. Register it before any other on-commit work (mail, tasks), which
    then starts only once the change is durable.
    """
    if not any(func is _wait_until_durable for _, func, _ in connection.run_on_commit):
        transaction.on_commit(_wait_until_durable)


def _wait_until_durable() -> None:
    with connection.cursor() as cursor:
        cursor.execute(WAIT_FOR_FLUSH_SQL)


def _payload(event: Event) -> str:
    return json.dumps(event.data, cls=DjangoJSONEncoder, allow_nan=False)


def event_parameters(event: Event, at, payload: str | None = None) -> dict:
    """The named parameters of lock_and_append_one_sql for this event, happening at `at`."""
    return {
        "event_at": at,
        "event_kind": event.kind,
        "event_actor": event.actor,
        "event_execution_id": event.execution_id,
        "event_packet_id": event.packet_id,
        "event_data": _payload(event) if payload is None else payload,
    }


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
