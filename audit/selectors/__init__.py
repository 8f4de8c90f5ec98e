"""Reads of the decision record: an execution's timeline and the auditors' filtered browser.

Both cost a fixed number of queries however long the record grows. Callers import from here;
the tunables (page sizes, timeouts, nesting) stay in the module that reads them, so patch them
there.
"""

from audit.selectors.access import can_browse, execution_for_user
from audit.selectors.browse import EVENTS_FROM, AuditFilters, SearchTooSlow, audit_events_page
from audit.selectors.summaries import event_summary
from audit.selectors.timeline import execution_timeline

__all__ = [
    "EVENTS_FROM",
    "AuditFilters",
    "SearchTooSlow",
    "audit_events_page",
    "can_browse",
    "event_summary",
    "execution_for_user",
    "execution_timeline",
]
