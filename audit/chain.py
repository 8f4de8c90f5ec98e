"""The hash chain of the decision record: pure functions, no database.

hash = SHA-256(prev_hash || canonical JSON of the row). Canonical JSON sorts keys, uses no
whitespace and keeps non-ASCII text as is, so the same row always hashes the same, whichever
process wrote it and whichever reads it back from jsonb.
"""

import hashlib
import json
from datetime import datetime

GENESIS_HASH = "0" * 64


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value) -> str:
    return _ENCODER.encode(value)


def row_document(
    *,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    execution_id,
    packet_id,
    data: dict,
) -> dict:
    """The fields of an audit row that the hash covers, in a JSON-ready form."""
    return {
        "seq": seq,
        "at": at.isoformat(),
        "kind": kind,
        "actor": actor,
        "execution_id": str(execution_id) if execution_id else None,
        "packet_id": str(packet_id) if packet_id else None,
        "data": data,
    }


def chain_hash(prev_hash: str, document: dict) -> str:
    return hashlib.sha256((prev_hash + canonical_json(document)).encode()).hexdigest()
