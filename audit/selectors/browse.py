"""The auditors' browser: the whole record, filtered, a page at a time.

It pages by keyset on (at, seq), never by OFFSET and never with COUNT(*), so its thousandth
page costs what its first does. The CSV export filters through the same AuditFilters.
"""

import json
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import OperationalError, connection, transaction
from psycopg import errors as pg_errors
from psycopg import sql

from audit.execution_table import events_from
from audit.models import AuditEvent
from audit.selectors.summaries import Entry

BROWSE_PAGE_SIZE = 50
# No index serves a substring of the event text, so searching it scans the events the other
# filters leave. Past TEXT_SEARCH_TIMEOUT_MS the browser searches thread ids only (an index
# lookup) and says so; past BROWSE_TIMEOUT_MS any page query gives up.
TEXT_SEARCH_TIMEOUT_MS = 2000
BROWSE_TIMEOUT_MS = 5000


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class AuditFilters:
    """The browser's and the export's filters (DESIGN section 7), already validated.

    `until` is exclusive: a date given alone reaches to the end of that day. `q` matches a
    substring of the execution's thread id or, unless `text` is off, of the event's payload.
    """

    q: str = ""
    kind: str = ""
    workflow: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: bool = True

    def where(self) -> sql.Composable:
        """The filters as SQL over events_from() (`e` the event, `x` its execution).

        Values go in as psycopg literals rather than bound parameters because COPY cannot take
        parameters; the page and the export share this one composition so they filter alike.
        """
        conditions: list[sql.Composable] = [sql.SQL("TRUE")]
        if self.q:
            pattern = sql.Literal(f"%{escape_like(self.q)}%")
            matches = sql.SQL("x.thread_id ILIKE {}").format(pattern)
            if self.text:
                matches = sql.SQL("({} OR e.data::text ILIKE {})").format(matches, pattern)
            conditions.append(matches)
        for column, value in (
            ("e.kind", self.kind),
            ("e.actor", self.actor),
            ("x.workflow", self.workflow),
        ):
            if value:
                conditions.append(sql.SQL(column + " = {}").format(sql.Literal(value)))
        if self.since is not None:
            conditions.append(sql.SQL("e.at >= {}").format(sql.Literal(self.since)))
        if self.until is not None:
            conditions.append(sql.SQL("e.at < {}").format(sql.Literal(self.until)))
        return sql.SQL(" AND ").join(conditions)


class SearchTooSlow(Exception):
    """The page's query ran past its statement timeout."""


@dataclass(frozen=True)
class BrowsePage:
    entries: list[Entry]
    newer: int | None
    older: int | None
    # The text search took too long, so only thread ids were searched.
    threads_only: bool = False


def audit_events_page(
    *,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int | None = None,
) -> BrowsePage:
    """A page of events, newest first; `before`/`after` are the seq of a row on the next page.

    The keyset is (at, seq): time ranges and the newest rows are then both an index range scan on
    `at`, wherever in the record they lie. `newer` and `older` are the cursors for the
    neighbouring pages, None where there is none. A text search that runs too long falls back to
    thread ids only (BrowsePage.threads_only).
    """
    size = size or BROWSE_PAGE_SIZE
    if filters.q and filters.text:
        try:
            return _events_page(filters, before, after, size, TEXT_SEARCH_TIMEOUT_MS)
        except SearchTooSlow:
            filters = replace(filters, text=False)
            page = _events_page(filters, before, after, size, BROWSE_TIMEOUT_MS)
            return replace(page, threads_only=True)
    return _events_page(filters, before, after, size, BROWSE_TIMEOUT_MS)


def _events_page(filters, before, after, size, timeout_ms) -> BrowsePage:
    newest_first = after is None
    conditions = [filters.where()]
    if before is not None or after is not None:
        conditions.append(
            sql.SQL("(e.at, e.id) {} (SELECT at, id FROM {} WHERE id = {})").format(
                sql.SQL("<" if newest_first else ">"),
                sql.Identifier(AuditEvent._meta.db_table),
                sql.Literal(before if newest_first else after),
            )
        )
    query = sql.SQL(
        "SELECT e.id, e.at, e.kind, e.actor, e.execution_id, e.packet_id, e.data::text, "
        "x.thread_id, x.workflow FROM {source} WHERE {where} "
        "ORDER BY e.at {direction}, e.id {direction} LIMIT {limit}"
    ).format(
        source=events_from(),
        where=sql.SQL(" AND ").join(conditions),
        direction=sql.SQL("DESC" if newest_first else "ASC"),
        limit=sql.Literal(size + 1),
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
            cursor.execute(query)
            rows = cursor.fetchall()
    except OperationalError as error:
        if isinstance(error.__cause__, pg_errors.QueryCanceled):
            raise SearchTooSlow from error
        raise
    more = len(rows) > size
    rows = rows[:size]
    if not newest_first:
        rows.reverse()
    entries = [
        Entry(
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            data=json.loads(text),
            execution_id=execution_id,
            packet_id=packet_id,
            thread_id=thread_id or "",
            workflow=workflow or "",
        )
        for seq, at, kind, actor, execution_id, packet_id, text, thread_id, workflow in rows
    ]
    if not entries:
        return BrowsePage(entries, None, None)
    if newest_first:
        newer = entries[0].seq if before is not None else None
        older = entries[-1].seq if more else None
    else:
        newer = entries[0].seq if more else None
        older = entries[-1].seq
    return BrowsePage(entries, newer, older)
