"""The hash chain's definition: SHA-256 of the previous hash and the row's jsonb text."""

import hashlib

import pytest
from django.db import connection, transaction

from audit.chain import DOCUMENT_SQL, GENESIS_HASH, canonical_json, chain_hash
from audit.services import record_event


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
