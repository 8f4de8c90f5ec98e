"""The decision record as CSV, streamed straight out of PostgreSQL's COPY.

COPY writes the CSV itself (quoting, escaping, the header), so Python only passes bytes along:
memory stays constant however many rows match, and the first bytes leave as soon as the
database sends them.
"""

import time
from collections.abc import Iterator

from django.db import connection
from psycopg import sql

from audit.execution_table import events_from
from audit.selectors import AuditFilters

# Bytes gathered before a chunk goes to the client; small COPY rows would otherwise each cost a
# write. A slow, sparse export still flushes every FLUSH_SECONDS so progress shows.
CHUNK_BYTES = 64 * 1024
FLUSH_SECONDS = 0.5

COLUMNS = (
    "seq",
    "at",
    "kind",
    "actor",
    "thread_id",
    "workflow",
    "execution_id",
    "packet_id",
    "data",
    "prev_hash",
    "hash",
)


def neutralised(expression: sql.Composable) -> sql.Composable:
    """A text cell a spreadsheet would run as a formula gets a leading ' (DESIGN section 8).

    That is a cell starting with =, +, -, @, tab or carriage return. One regexp_replace, so a
    long expression such as the payload's text is computed once.
    """
    return sql.SQL("regexp_replace({}, '^([-=+@\\t\\r])', '''\\1')").format(expression)


def export_query(filters: AuditFilters) -> sql.Composed:
    """COPY of the filtered events, oldest first, in the columns of COLUMNS.

    Only text cells are neutralised: seq, the UTC time, the UUIDs and the hex hashes cannot start
    with any of those characters.
    """
    select = sql.SQL(
        "SELECT e.id AS seq, "
        """to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, """
        "{kind} AS kind, {actor} AS actor, {thread_id} AS thread_id, {workflow} AS workflow, "
        "e.execution_id, e.packet_id, {data} AS data, e.prev_hash, e.hash "
        "FROM {source} WHERE {where} ORDER BY e.at, e.id"
    ).format(
        kind=neutralised(sql.SQL("e.kind")),
        actor=neutralised(sql.SQL("e.actor")),
        thread_id=neutralised(sql.SQL("x.thread_id")),
        workflow=neutralised(sql.SQL("x.workflow")),
        data=neutralised(sql.SQL("e.data::text")),
        source=events_from(),
        where=filters.where(),
    )
    return sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(select)


def export_csv(filters: AuditFilters) -> Iterator[bytes]:
    """Yield the CSV in chunks; the first chunk (the header) as soon as COPY starts.

    Closing the generator early (the client went away) leaves the `with` blocks with
    GeneratorExit, which makes psycopg cancel the COPY and drain it, so the connection stays
    usable.
    """
    # COPY cannot go through Django's cursor wrapper; the psycopg cursor under it streams it.
    with connection.cursor() as cursor, cursor.cursor.copy(export_query(filters)) as copy:
        buffer = bytearray()
        flushed = None
        for data in copy:
            buffer += data
            now = time.monotonic()
            if flushed is None or len(buffer) >= CHUNK_BYTES or now - flushed >= FLUSH_SECONDS:
                yield bytes(buffer)
                buffer.clear()
                flushed = now
        if buffer:
            yield bytes(buffer)
