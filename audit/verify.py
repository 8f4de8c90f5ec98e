"""Recompute the decision record's hash chain and find the first row that does not hold.

The table is read in id order by keyset pages of raw SQL: memory stays constant however long
the record grows, and no model instance is built per row. Each row is checked twice: its
prev_hash must be the previous row's hash (a deleted or inserted row breaks this link), and its
hash must be SHA-256 of that prev_hash and its own contents (an edited row breaks this).
"""

import json
from dataclasses import dataclass
from datetime import UTC

from django.db import connection

from audit.chain import GENESIS_HASH, chain_hash, row_document

CHUNK_SIZE = 10_000

_HEAD = "SELECT max(id) FROM audit_auditevent"
_BEFORE = "SELECT id, hash FROM audit_auditevent WHERE id <= %s ORDER BY id DESC LIMIT 1"
# data as text, decoded here by json.loads: the values hashed are exactly those jsonb holds.
# No upper bound in the query: "id > x ORDER BY id LIMIT n" walks the primary key whatever the
# planner's statistics say, where a bounded range may be planned as a bitmap scan and a sort.
_PAGE = (
    "SELECT id, at, kind, actor, execution_id::text, packet_id::text, data::text, prev_hash, hash "
    "FROM audit_auditevent WHERE id > %s ORDER BY id LIMIT %s"
)


@dataclass(frozen=True)
class BadRow:
    seq: int
    problem: str


@dataclass(frozen=True)
class ChainReport:
    """rows_checked counts the rows read, the bad one included; head_hash is the hash of the
    last intact row (or, when the range holds no row, the hash the range would start from)."""

    rows_checked: int
    head_hash: str
    first_bad: BadRow | None

    @property
    def intact(self) -> bool:
        return self.first_bad is None


def verify_chain(
    *, from_seq: int | None = None, to_seq: int | None = None, chunk_size: int = CHUNK_SIZE
) -> ChainReport:
    """Verify the rows with from_seq <= seq <= to_seq (the whole table by default).

    A range that starts mid-chain trusts its first row's prev_hash only as far as it must:
    when a row precedes the range, the first row must still link to it.
    """
    with connection.cursor() as cursor:
        if to_seq is None:
            # Rows appended while we read lie beyond this bound: the report is of one moment.
            cursor.execute(_HEAD)
            to_seq = cursor.fetchone()[0] or 0
        after = (from_seq - 1) if from_seq is not None else 0
        cursor.execute(_BEFORE, [after])
        before = cursor.fetchone()
        expected_prev, prev_seq = (before[1], before[0]) if before else (GENESIS_HASH, None)
        return _walk(cursor, after, to_seq, chunk_size, expected_prev, prev_seq)


def _walk(cursor, after, to_seq, chunk_size, expected_prev, prev_seq) -> ChainReport:
    checked = 0
    loads = json.loads
    for seq, at, kind, actor, execution_id, packet_id, data, prev_hash, digest in _rows(
        cursor, after, to_seq, chunk_size
    ):
        checked += 1
        if prev_hash != expected_prev:
            problem = (
                f"prev_hash does not match row {prev_seq}'s hash"
                if prev_seq is not None
                else "prev_hash is not the genesis hash, yet no row comes before it"
            )
            return ChainReport(checked, expected_prev, BadRow(seq, problem))
        document = row_document(
            seq=seq,
            # The writer hashed a UTC timestamp; the session time zone must not matter.
            at=at.astimezone(UTC),
            kind=kind,
            actor=actor,
            execution_id=execution_id,
            packet_id=packet_id,
            data=loads(data),
        )
        if chain_hash(prev_hash, document) != digest:
            problem = "hash does not match its contents"
            return ChainReport(checked, expected_prev, BadRow(seq, problem))
        expected_prev, prev_seq = digest, seq
    return ChainReport(checked, expected_prev, None)


def _rows(cursor, after: int, to_seq: int, chunk_size: int):
    while True:
        cursor.execute(_PAGE, [after, chunk_size])
        rows = cursor.fetchall()
        for row in rows:
            if row[0] > to_seq:
                return
            yield row
        if len(rows) < chunk_size:
            return
        after = rows[-1][0]
