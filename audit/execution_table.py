"""The table an event's execution_id names, registered by the app that owns executions.

The browser and the export show each event's thread id and workflow and filter on them, so they
join that table (columns id, thread_id, workflow). The owning app names it when it is ready, so
audit never imports it.
"""

from django.core.exceptions import ImproperlyConfigured
from psycopg import sql

from audit.models import AuditEvent

_table: str | None = None


def register(db_table: str) -> None:
    global _table
    _table = db_table


def events_from() -> sql.Composable:
    """`FROM` of the browser and the export: `e` the event, `x` its execution (if any)."""
    if _table is None:
        raise ImproperlyConfigured("no app registered the executions table (audit.execution_table)")
    return sql.SQL("{events} e LEFT JOIN {executions} x ON x.id = e.execution_id").format(
        events=sql.Identifier(AuditEvent._meta.db_table), executions=sql.Identifier(_table)
    )
