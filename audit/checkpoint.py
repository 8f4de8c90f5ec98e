"""Checkpoints of the decision record: its head, kept where the database cannot rewrite it.

The chain proves that no row changed without every later hash changing; it cannot prove that
the last rows were not cut off, or the whole tail re-hashed, by someone who can write the
table. A checkpoint (RFC 6962's signed tree head, in spirit) is the head's seq and hash, sent
every GATEKEEPER_AUDIT_CHECKPOINT_SECONDS to the log (logger `gatekeeper.audit.checkpoint`)
and, signed like a webhook, to GATEKEEPER_AUDIT_CHECKPOINT_URL. `verify_audit
--expect-head-file` later proves the record still holds that row with that hash: whatever
was appended since, it extends what the auditor saw.

A checkpoint reads as `seq=<N> hash=<64 hex digits>`, in the log line and in a file given to
verify_audit; the webhook body carries the same in `"checkpoint": {"seq", "hash", "at"}`.
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH
from audit.services import wait_until_durable_on_commit

logger = logging.getLogger("gatekeeper.audit.checkpoint")

# Serialises checkpointers (beat, a sweep) so that two never both find one due.
CHECKPOINT_LOCK_KEY = 0x6A7E_4B34
_HEAD = "SELECT id, hash FROM audit_auditevent ORDER BY id DESC LIMIT 1"
_HASH = re.compile(r"[0-9a-f]{64}")
_FIELD = re.compile(r"\b(seq|hash|head)=(\S*)")


@dataclass(frozen=True)
class Checkpoint:
    """A row of the record: seq 0 is the empty record, whose hash is the genesis hash."""

    seq: int | None
    hash: str

    def __str__(self) -> str:
        return f"seq={self.seq} hash={self.hash}"


def current_head() -> Checkpoint:
    """The last committed row of the record."""
    with connection.cursor() as cursor:
        cursor.execute(_HEAD)
        row = cursor.fetchone()
    return Checkpoint(*row) if row else Checkpoint(0, GENESIS_HASH)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from what an auditor kept; ValueError saying what is wrong.

    Accepted: the log line or `seq=<N> hash=<hex>` (`head=<hex>` as verify_audit prints it),
    the webhook's JSON body or its `checkpoint` object, or a bare hash (no seq: it must be
    the head).
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise ValueError("is not valid JSON") from None
        fields = document.get("checkpoint", document) if isinstance(document, dict) else {}
        if not isinstance(fields, dict):
            fields = {}
        seq, digest = fields.get("seq"), fields.get("hash")
    elif _HASH.fullmatch(text):
        seq, digest = None, text
    else:
        found = dict(_FIELD.findall(text))
        digest = found.get("hash") or found.get("head")
        seq = found.get("seq")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise ValueError("holds no hash of 64 lowercase hex digits (hash=<hex>)")
    if seq is not None:
        if isinstance(seq, str) and seq.isdigit():
            seq = int(seq)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("has a seq that is not a whole number of 0 or more")
    return Checkpoint(seq, digest)


class CheckpointSink(Protocol):
    """Somewhere a checkpoint goes besides the log, registered by the app that sends it there."""

    def enabled(self) -> bool:
        """Whether this sink is configured at all."""

    def due(self, now: datetime) -> bool:
        """False while the last checkpoint sent here is too recent for another."""

    def send(self, head: Checkpoint, now: datetime) -> None:
        """Queue the checkpoint in the caller's transaction."""


_sinks: list[CheckpointSink] = []


def register_sink(sink: CheckpointSink) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


@transaction.atomic
def audit_checkpoint() -> Checkpoint | None:
    """Log the record's head and send it to every enabled sink (approvals registers the signed
    webhook to GATEKEEPER_AUDIT_CHECKPOINT_URL).

    With a sink, at most one checkpoint per GATEKEEPER_AUDIT_CHECKPOINT_SECONDS (less a
    tenth) is made, however often beat and `manage.py sweep` call this; None when one was made
    within that time.
    The line is logged, and the webhook queued, only once the head is durable: a gate check
    commits without waiting for the disk, and a checkpoint naming a row a crash could still
    take back would later look like tampering.
    """
    sinks = [sink for sink in _sinks if sink.enabled()]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])
    if not all(sink.due(now) for sink in sinks):
        return None
    head = current_head()
    wait_until_durable_on_commit()
    transaction.on_commit(lambda: logger.info("audit checkpoint %s", head))
    for sink in sinks:
        sink.send(head, now)
    return head
