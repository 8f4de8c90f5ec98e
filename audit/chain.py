"""The hash chain of the decision record.

hash = SHA-256(prev_hash || canonical JSON of the row). The canonical JSON of a row is the text
PostgreSQL gives for it as a jsonb object (`DOCUMENT_SQL`): jsonb has one normal form (keys
sorted by length then bytes, numbers normalised, one space after `:` and `,`), so the writer
and the verifier, in Python or in SQL, hash the very same bytes, and no float or unicode
rendering difference between Python and jsonb can ever make an untouched row look tampered.
Verification can then run entirely inside PostgreSQL, at the speed of a table scan.
"""

import hashlib
import json

GENESIS_HASH = "0" * 64

# The row document, over the audit table's column names (or an unnest of them, as the writer
# uses). `at` is rendered in UTC with microseconds, whatever the session's time zone.
DOCUMENT_SQL = (
    "jsonb_build_object("
    "'seq', {p}id, "
    "'at', to_char({p}at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "'kind', {p}kind, "
    "'actor', {p}actor, "
    "'execution_id', {p}execution_id, "
    "'packet_id', {p}packet_id, "
    "'data', {p}data"
    ")::text"
)

# The same hash, computed by PostgreSQL.
HASH_SQL = "encode(sha256(convert_to({p}prev_hash || " + DOCUMENT_SQL + ", 'UTF8')), 'hex')"

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value) -> str:
    """A stable JSON text for values hashed in Python (request bodies, packet snapshots)."""
    return _ENCODER.encode(value)


def chain_hash(prev_hash: str, document: str) -> str:
    """SHA-256 of the previous hash followed by the row's document text (DOCUMENT_SQL)."""
    return hashlib.sha256((prev_hash + document).encode()).hexdigest()
