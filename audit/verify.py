"""Recompute the decision record's hash chain inside PostgreSQL and find the first bad row.

Each row is checked twice: its hash must be SHA-256 of its prev_hash and its own contents (an
edited row breaks this), and its prev_hash must be the previous row's hash (a deleted or
inserted row breaks this link). PostgreSQL does both: the contents check renders and hashes
every row (audit.chain HASH_SQL) in a parallel scan over the cores, the link check compares
neighbours with a window function. Only the first bad row ever leaves the database, so memory
stays constant and the speed is that of reading the table, not of a Python loop.
"""

from dataclasses import dataclass

from django.db import connection

from audit.chain import GENESIS_HASH, HASH_SQL

_HEAD = "SELECT max(id) FROM audit_auditevent"
_BEFORE = "SELECT id, hash FROM audit_auditevent WHERE id < %s ORDER BY id DESC LIMIT 1"
# An aggregate, not ORDER BY ... LIMIT 1: it lets PostgreSQL split the hashing over workers.
_CONTENTS = (
    "SELECT count(*), max(id), min(id) FILTER (WHERE "
    + HASH_SQL.format(p="")
    + " <> hash) FROM audit_auditevent WHERE id >= %(low)s AND id <= %(high)s"
)
_LINKS = """
SELECT id, previous_id FROM (
    SELECT id, prev_hash,
           lag(id) OVER w AS previous_id,
           lag(hash, 1, %(start)s) OVER w AS previous
      FROM audit_auditevent
     WHERE id >= %(low)s AND id <= %(high)s
    WINDOW w AS (ORDER BY id)
) AS neighbours
WHERE prev_hash <> previous
ORDER BY id
LIMIT 1
"""
_POSITION = "SELECT count(*) FROM audit_auditevent WHERE id >= %s AND id <= %s"
_HASH_OF = "SELECT hash FROM audit_auditevent WHERE id = %s"


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


def verify_chain(*, from_seq: int | None = None, to_seq: int | None = None) -> ChainReport:
    """Verify the rows with from_seq <= seq <= to_seq (the whole table by default).

    A range that starts mid-chain must still link to the row before it, when there is one.
    """
    with connection.cursor() as cursor:
        if to_seq is None:
            # Rows appended while we read lie beyond this bound: the report is of one moment.
            cursor.execute(_HEAD)
            to_seq = cursor.fetchone()[0] or 0
        low = from_seq if from_seq is not None else 0
        cursor.execute(_BEFORE, [low])
        before = cursor.fetchone()
        start, start_seq = (before[1], before[0]) if before else (GENESIS_HASH, None)
        bounds = {"low": low, "high": to_seq, "start": start}
        cursor.execute(_CONTENTS, bounds)
        count, last_seq, first_edited = cursor.fetchone()
        cursor.execute(_LINKS, bounds)
        broken_link = cursor.fetchone()
        if broken_link is None and first_edited is None:
            if last_seq is None:
                return ChainReport(0, start, None)
            cursor.execute(_HASH_OF, [last_seq])
            return ChainReport(count, cursor.fetchone()[0], None)
        # The first bad row wins; on the same row, a broken link is named first.
        if broken_link is not None and (first_edited is None or broken_link[0] <= first_edited):
            seq, previous_seq = broken_link
            problem = _link_problem(previous_seq or start_seq)
        else:
            seq, problem = first_edited, "hash does not match its contents"
        cursor.execute(_POSITION, [low, seq])
        position = cursor.fetchone()[0]
        cursor.execute(_BEFORE, [seq])
        previous = cursor.fetchone()
        head = previous[1] if previous and position > 1 else start
        return ChainReport(position, head, BadRow(seq, problem))


def hash_at(seq: int) -> str | None:
    """The stored hash of row `seq` (seq 0: the genesis hash), or None when there is none."""
    if seq == 0:
        return GENESIS_HASH
    with connection.cursor() as cursor:
        cursor.execute(_HASH_OF, [seq])
        row = cursor.fetchone()
    return row[0] if row else None


def _link_problem(previous_seq: int | None) -> str:
    if previous_seq is None:
        return "prev_hash is not the genesis hash, yet no row comes before it"
    return f"prev_hash does not match row {previous_seq}'s hash"
