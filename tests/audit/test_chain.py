"""The hash chain's definition: SHA-256 of the previous hash and the row's jsonb text."""

import hashlib

import pytest
from django.db import connection, transaction

from audit.chain import DOCUMENT_SQL, GENESIS_HASH, canonical_json, chain_hash
from audit.models import AuditEvent
from audit.services import ID_SEQUENCE, Event, record_event, record_events
from audit.verify import verify_chain


def test_canonical_json_sorts_keys_uses_no_whitespace_and_keeps_unicode():
    assert canonical_json({"b": [1, {"d": 2, "c": "Zoë"}], "a": None}) == (
        '{"a":null,"b":[1,{"c":"Zoë","d":2}]}'
    )


def test_canonical_json_refuses_nan_and_infinity():
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            canonical_json({"value": value})


def test_chain_hash_is_sha256_of_prev_hash_and_the_document_text():
    document = '{"a": "ü", "b": 2}'
    expected = hashlib.sha256((GENESIS_HASH + document).encode()).hexdigest()
    assert chain_hash(GENESIS_HASH, document) == expected
    assert chain_hash("1" * 64, document) != expected


def _document(event) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {DOCUMENT_SQL.format(p='')} FROM audit_auditevent WHERE id = %s", [event.id]
        )
        return cursor.fetchone()[0]


def test_the_document_holds_every_field_in_a_time_zone_independent_form(db):
    with transaction.atomic():
        event = record_event(
            "packet.approved",
            actor="user:alice",
            data={"b": 1, "a": [1.0, "é"]},
            execution_id="11111111-1111-4111-8111-111111111111",
        )
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Kolkata'")
        document = _document(event)
        cursor.execute("SET TIME ZONE 'UTC'")
    assert document == _document(event)
    assert f'"seq": {event.id}' in document
    assert '"at": "' + event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"' in document
    assert '"execution_id": "11111111-1111-4111-8111-111111111111"' in document
    assert '"packet_id": null' in document
    assert '"data": {"a": [1.0, "é"], "b": 1}' in document
    assert chain_hash(event.prev_hash, document) == event.hash


@pytest.mark.parametrize(
    "column, value",
    [
        ("kind", "'packet.rejected'"),
        ("actor", "'user:mallory'"),
        ("data", "'{}'::jsonb"),
        ("at", "at + interval '1 microsecond'"),
        ("packet_id", "gen_random_uuid()"),
    ],
)
def test_changing_any_field_changes_the_document(db, column, value):
    with transaction.atomic():
        event = record_event("packet.approved", actor="user:alice", data={"x": 1})
    before = _document(event)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(f"UPDATE audit_auditevent SET {column} = {value} WHERE id = %s", [event.id])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    assert _document(event) != before


def test_events_appended_together_take_their_seqs_and_links_in_the_order_given(db):
    with transaction.atomic():
        first = record_event("policy.changed", actor="user:admin", data={"n": 0})
        events = record_events(
            Event(kind=f"kind.{n}", actor="system", data={"n": n}) for n in range(1, 8)
        )
    stored = list(AuditEvent.objects.filter(id__gt=first.id).order_by("id"))
    assert [e.kind for e in stored] == [f"kind.{n}" for n in range(1, 8)]
    assert [(e.id, e.prev_hash, e.hash) for e in stored] == [
        (e.id, e.prev_hash, e.hash) for e in events
    ]
    assert [e.prev_hash for e in stored] == [first.hash] + [e.hash for e in stored[:-1]]
    for event in stored:
        assert chain_hash(event.prev_hash, _document(event)) == event.hash
    assert verify_chain().intact


def test_the_first_event_of_an_empty_record_links_to_the_genesis_hash(db):
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        event = record_event("policy.changed", actor="user:admin")
    assert event.prev_hash == GENESIS_HASH
    assert chain_hash(GENESIS_HASH, _document(event)) == event.hash


def test_the_id_sequence_named_in_the_appends_is_the_id_columns(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditevent', 'id')")
        assert cursor.fetchone()[0] == f"public.{ID_SEQUENCE}"
