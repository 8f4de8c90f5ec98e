"""The hash chain's pure functions: canonical JSON and chain_hash."""

import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from audit.chain import GENESIS_HASH, canonical_json, chain_hash, row_document

AT = datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC)
EXECUTION = uuid.UUID("11111111-1111-4111-8111-111111111111")
PACKET = uuid.UUID("22222222-2222-4222-8222-222222222222")


def _row(**changes) -> dict:
    fields = {
        "seq": 7,
        "at": AT,
        "kind": "packet.approved",
        "actor": "user:alice",
        "execution_id": EXECUTION,
        "packet_id": PACKET,
        "data": {"decision": "allow", "votes": [1, 2]},
    }
    return row_document(**{**fields, **changes})


def test_canonical_json_sorts_keys_uses_no_whitespace_and_keeps_unicode():
    assert canonical_json({"b": [1, {"d": 2, "c": "Zoë"}], "a": None}) == (
        '{"a":null,"b":[1,{"c":"Zoë","d":2}]}'
    )


def test_canonical_json_does_not_depend_on_key_order():
    first = {"x": 1, "y": {"p": [3, 2], "q": "é"}}
    second = {"y": {"q": "é", "p": [3, 2]}, "x": 1}
    assert canonical_json(first) == canonical_json(second)


def test_canonical_json_refuses_nan_and_infinity():
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            canonical_json({"value": value})


def test_chain_hash_is_sha256_of_prev_hash_and_canonical_json():
    document = {"b": 2, "a": "ü"}
    expected = hashlib.sha256((GENESIS_HASH + '{"a":"ü","b":2}').encode()).hexdigest()
    assert chain_hash(GENESIS_HASH, document) == expected


def test_chain_hash_is_stable_across_calls_and_key_orders():
    assert chain_hash(GENESIS_HASH, _row()) == chain_hash(GENESIS_HASH, _row())
    reordered = dict(reversed(list(_row().items())))
    assert chain_hash(GENESIS_HASH, reordered) == chain_hash(GENESIS_HASH, _row())


def test_row_document_gives_ids_as_strings_and_the_time_in_iso_format():
    document = _row(execution_id=None)
    assert document["execution_id"] is None
    assert document["packet_id"] == str(PACKET)
    assert document["at"] == "2026-11-23T09:30:00.123456+00:00"


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"at": datetime(2026, 11, 23, 9, 30, 0, 123457, tzinfo=UTC)},
        {"kind": "packet.rejected"},
        {"actor": "user:bob"},
        {"execution_id": uuid.UUID("33333333-3333-4333-8333-333333333333")},
        {"execution_id": None},
        {"packet_id": None},
        {"data": {"decision": "block", "votes": [1, 2]}},
        {"data": {"decision": "allow", "votes": [2, 1]}},
        {"data": {"decision": "allow", "votes": [1, 2.0]}},
        {"data": {"decision": "allow", "votes": [1, 2], "extra": None}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changing_any_field_changes_the_hash(change):
    assert chain_hash(GENESIS_HASH, _row(**change)) != chain_hash(GENESIS_HASH, _row())


def test_changing_the_previous_hash_changes_the_hash():
    assert chain_hash("1" * 64, _row()) != chain_hash(GENESIS_HASH, _row())
