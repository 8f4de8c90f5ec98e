"""manage.py verify_audit recomputes the chain and stops at the first bad row."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from approvals.events import EventKind
from audit.chain import GENESIS_HASH, HASH_SQL
from audit.models import AuditEvent
from audit.services import record_event
from audit.verify import verify_chain


@pytest.fixture
def chain(gate) -> list[AuditEvent]:
    """A record written by the real services: gate checks on three executions."""
    for thread in ("t-1", "t-2", "t-3"):
        gate(execution__thread_id=thread)
        gate(execution__thread_id=thread, step__index=4)
    events = list(AuditEvent.objects.order_by("id"))
    assert len(events) >= 6
    return events


def _verify(*args) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def _verify_fails(*args) -> str:
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit", *args, stdout=out)
    assert refused.value.returncode != 0
    assert "head=" not in out.getvalue()
    return str(refused.value)


def _tamper(sql: str, params=()):
    # What an attacker with the table owner's rights could do; the test superuser may.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def test_an_intact_chain_verifies_and_prints_its_head(chain):
    output = _verify()
    assert f"checked {len(chain)} rows" in output
    assert "rows/s" in output
    assert f"head={chain[-1].hash}\n" in output


def test_an_empty_record_verifies_from_the_genesis_hash(db):
    output = _verify()
    assert "checked 0 rows" in output
    assert f"head={GENESIS_HASH}" in output


def test_an_edited_row_fails_naming_that_row(chain):
    edited = chain[2]
    _tamper(
        'UPDATE audit_auditevent SET data = data || \'{"decision": "allow"}\' WHERE id = %s',
        [edited.id],
    )
    assert _verify_fails() == (
        f"the decision record is broken at row {edited.id}: hash does not match its contents"
    )


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(chain):
    edited, following = chain[2], chain[3]
    forged = {**edited.data, "forged": True}
    _tamper(
        "UPDATE audit_auditevent SET data = %s::jsonb WHERE id = %s",
        [json.dumps(forged), edited.id],
    )
    _tamper(
        f"UPDATE audit_auditevent SET hash = {HASH_SQL.format(p='')} WHERE id = %s", [edited.id]
    )
    assert _verify_fails() == (
        f"the decision record is broken at row {following.id}: "
        f"prev_hash does not match row {edited.id}'s hash"
    )


def test_a_deleted_middle_row_is_caught_as_a_broken_link(chain):
    before, deleted, after = chain[1], chain[2], chain[3]
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [deleted.id])
    assert _verify_fails() == (
        f"the decision record is broken at row {after.id}: "
        f"prev_hash does not match row {before.id}'s hash"
    )


def test_a_first_row_that_does_not_start_from_genesis_is_caught(chain):
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [chain[0].id])
    message = _verify_fails()
    assert f"row {chain[1].id}: prev_hash is not the genesis hash" in message


def test_verification_stops_at_the_first_of_several_bad_rows(chain):
    for event in (chain[4], chain[2]):
        _tamper("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE id = %s", [event.id])
    report = verify_chain()
    assert report.first_bad.seq == chain[2].id
    assert report.rows_checked == 3
    assert report.head_hash == chain[1].hash


def test_a_range_checks_only_its_rows_and_reports_its_last_hash(chain):
    first, last = chain[2], chain[4]
    output = _verify("--from-seq", str(first.id), "--to-seq", str(last.id))
    assert "checked 3 rows" in output
    assert f"head={last.hash}\n" in output


def test_a_range_ignores_edits_outside_it(chain):
    for event in (chain[1], chain[5]):
        _tamper("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE id = %s", [event.id])
    output = _verify("--from-seq", str(chain[2].id), "--to-seq", str(chain[4].id))
    assert f"head={chain[4].hash}" in output


def test_a_range_still_checks_its_link_to_the_row_before_it(chain):
    _tamper("UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["e" * 64, chain[1].id])
    message = _verify_fails("--from-seq", str(chain[2].id))
    assert message == (
        f"the decision record is broken at row {chain[2].id}: "
        f"prev_hash does not match row {chain[1].id}'s hash"
    )


def test_a_range_from_the_first_row_must_start_from_genesis(chain):
    _tamper("UPDATE audit_auditevent SET prev_hash = %s WHERE id = %s", ["d" * 64, chain[0].id])
    message = _verify_fails("--from-seq", "0", "--to-seq", str(chain[1].id))
    assert f"row {chain[0].id}: prev_hash is not the genesis hash" in message


def test_a_range_with_no_rows_verifies(chain):
    output = _verify("--from-seq", str(chain[-1].id + 100))
    assert "checked 0 rows" in output
    assert f"head={chain[-1].hash}" in output


def test_a_range_that_ends_before_it_starts_is_refused(db):
    with pytest.raises(CommandError, match="--from-seq 5 is after --to-seq 3"):
        call_command("verify_audit", "--from-seq", "5", "--to-seq", "3")


def test_rows_appended_after_the_range_end_are_not_read(chain):
    report = verify_chain(to_seq=chain[3].id)
    assert (report.rows_checked, report.head_hash) == (4, chain[3].hash)


def test_the_writer_and_the_database_compute_the_same_hash(chain):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {HASH_SQL.format(p='')} = hash FROM audit_auditevent ORDER BY id"
        )
        assert all(same for _, same in cursor.fetchall())


PAYLOADS = {
    "unicode": {"name": "Zoë Ångström", "cjk": "日本語", "emoji": "🚀👩‍💻", "sep": "\u2028\u2029"},
    "escapes": {"quote": '"', "backslash": "\\", "controls": "\t\n\r\x01\x1f", "slash": "a/b"},
    "floats": {"tenth": 0.1, "pi": 3.141592653589793, "neg": -2.5, "tiny": 1.5e-07, "one": 1.0},
    "more_floats": {
        "big": 1e15,
        "third": 1 / 3,
        "denormal": 5e-324,
        "max_exact": 9007199254740993.0,
    },
    "big_ints": {"i63": 2**63, "neg": -(2**70), "huge": 10**40, "zero": 0},
    "nested": {
        "lists": [[1, [2, [3, [4]]]], [], [{}]],
        "objects": {"a": {"b": {"c": [None, True]}}},
    },
    "keys": {"": "empty key", "é": 1, "a b": 2, "10": 3, "9": 4, "Z": 5, "a": 6},
    "empty": {},
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_hashes_survive_the_jsonb_round_trip(db, payload):
    with transaction.atomic():
        event = record_event(EventKind.STEP_OUTCOME, actor="service:agent", data=payload)
    assert AuditEvent.objects.get(id=event.id).data == payload
    report = verify_chain()
    assert report.intact, report.first_bad
    assert report.head_hash == event.hash


@pytest.mark.parametrize("value", [1e16, 1e20, -0.0], ids=["1e16", "1e20", "negative_zero"])
def test_hashes_survive_the_jsonb_round_trip_for_large_floats_and_negative_zero(db, value):
    with transaction.atomic():
        record_event(EventKind.STEP_OUTCOME, actor="service:agent", data={"amount": value})
    assert verify_chain().intact


def _rehash_from(seq: int) -> None:
    """Rewrite history as an owner could: every row from `seq` on re-linked and re-hashed."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute("SELECT id FROM audit_auditevent WHERE id >= %s ORDER BY id", [seq])
        for (row_id,) in cursor.fetchall():
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = coalesce((SELECT hash FROM"
                " audit_auditevent WHERE id < %s ORDER BY id DESC LIMIT 1), %s) WHERE id = %s",
                [row_id, GENESIS_HASH, row_id],
            )
            cursor.execute(
                f"UPDATE audit_auditevent SET hash = {HASH_SQL.format(p='')} WHERE id = %s",
                [row_id],
            )
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def _checkpoint_file(tmp_path, event: AuditEvent) -> str:
    path = tmp_path / "checkpoint.txt"
    path.write_text(f"seq={event.id} hash={event.hash}\n")
    return str(path)


def test_truncated_last_rows_pass_alone_and_fail_against_the_expected_head(chain, tmp_path):
    head = chain[-1]
    checkpoint = _checkpoint_file(tmp_path, head)
    _tamper("DELETE FROM audit_auditevent WHERE id >= %s", [chain[-2].id])
    assert f"head={chain[-3].hash}" in _verify()  # the chain alone cannot tell

    assert _verify_fails("--expect-head", head.hash) == (
        f"the decision record's head is {chain[-3].hash}, not the expected {head.hash}: "
        "rows after it were removed, rows were rewritten, or rows were appended since "
        "(give the checkpoint's seq with --expect-head-file)"
    )
    assert _verify_fails("--expect-head-file", checkpoint) == (
        f"the decision record has no row {head.id}, which the checkpoint names: it ends at "
        f"row {chain[-3].id}; rows were removed"
    )


def test_a_rewritten_and_rehashed_tail_passes_alone_and_fails_against_the_checkpoint(
    chain, tmp_path
):
    checkpoint = _checkpoint_file(tmp_path, chain[-1])
    forged = {**chain[2].data, "decision": "allow"}
    _tamper(
        "UPDATE audit_auditevent SET data = %s::jsonb WHERE id = %s",
        [json.dumps(forged), chain[2].id],
    )
    _rehash_from(chain[2].id)
    assert verify_chain().intact  # the chain alone cannot tell
    rewritten = AuditEvent.objects.get(id=chain[-1].id).hash

    assert _verify_fails("--expect-head", chain[-1].hash).startswith(
        f"the decision record's head is {rewritten}, not the expected {chain[-1].hash}"
    )
    assert _verify_fails("--expect-head-file", checkpoint) == (
        f"row {chain[-1].id}'s hash is {rewritten}, not the checkpoint's {chain[-1].hash}: "
        "the record was rewritten up to that row"
    )


def test_a_record_that_grew_since_the_checkpoint_extends_it(chain, gate, tmp_path):
    checkpoint = _checkpoint_file(tmp_path, chain[-1])
    gate(execution__thread_id="t-later")

    output = _verify("--expect-head-file", checkpoint)

    assert f"the record holds the checkpoint at row {chain[-1].id} and extends it\n" in output
    assert f"head={AuditEvent.objects.last().hash}" in output
    assert "appended since" in _verify_fails("--expect-head", chain[-1].hash)


def test_the_current_head_matches_its_own_hash(chain):
    output = _verify("--expect-head", chain[-1].hash)
    assert "the head is the expected one\n" in output and f"head={chain[-1].hash}" in output


def test_the_empty_record_holds_the_genesis_checkpoint(db, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text(f"seq=0 hash={GENESIS_HASH}")
    assert "holds the checkpoint at row 0" in _verify("--expect-head-file", str(path))


def test_a_checkpoint_beyond_the_range_checked_is_refused(chain, tmp_path):
    checkpoint = _checkpoint_file(tmp_path, chain[-1])
    with pytest.raises(CommandError, match=f"seq {chain[-1].id} is after --to-seq"):
        call_command("verify_audit", "--to-seq", str(chain[1].id), "--expect-head-file", checkpoint)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no hash of 64 lowercase hex digits"),
        ("seq=3 hash=abc", "holds no hash of 64 lowercase hex digits"),
        (f"seq=-1 hash={'a' * 64}", "has a seq that is not a whole number"),
        ('{"checkpoint": {"seq": "x"}}', "holds no hash"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_an_unreadable_checkpoint_is_refused_clearly(db, tmp_path, content, message):
    path = tmp_path / "checkpoint.txt"
    path.write_text(content)
    with pytest.raises(CommandError, match=f"--expect-head-file {path} {message}"):
        call_command("verify_audit", "--expect-head-file", str(path))


def test_a_missing_checkpoint_file_is_refused_clearly(db, tmp_path):
    with pytest.raises(CommandError, match="cannot be read"):
        call_command("verify_audit", "--expect-head-file", str(tmp_path / "missing.txt"))


def test_expect_head_takes_only_a_hash(db):
    with pytest.raises(CommandError, match="--expect-head holds no hash"):
        call_command("verify_audit", "--expect-head", "deadbeef")
