"""What an auditor kept of a checkpoint reads back as the same seq and hash."""

import json

import pytest

from audit.checkpoint import Checkpoint, parse_checkpoint

HASH = "ab" * 32


@pytest.mark.parametrize(
    "kept",
    [
        f"seq=42 hash={HASH}",
        f"INFO gatekeeper.audit.checkpoint audit checkpoint seq=42 hash={HASH}\n",
        json.dumps({"id": "d1", "event": "audit.checkpoint",
                    "checkpoint": {"seq": 42, "hash": HASH, "at": "2026-12-06T05:00:00Z"}}),
        json.dumps({"seq": 42, "hash": HASH}),
    ],
    ids=["fields", "log line", "webhook body", "checkpoint object"],
)  # fmt: skip
def test_every_form_a_checkpoint_is_kept_in_reads_back(kept):
    assert parse_checkpoint(kept) == Checkpoint(42, HASH)


def test_a_bare_hash_or_verify_audits_head_line_has_no_seq():
    assert parse_checkpoint(HASH) == Checkpoint(None, HASH)
    assert parse_checkpoint(f"head={HASH}") == Checkpoint(None, HASH)


def test_a_checkpoint_prints_as_it_is_read():
    assert str(Checkpoint(42, HASH)) == f"seq=42 hash={HASH}"
    assert parse_checkpoint(str(Checkpoint(42, HASH))) == Checkpoint(42, HASH)
