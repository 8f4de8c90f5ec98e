"""Reads of the decision record: the auditors' filtered browser (an execution's timeline is
approvals.selectors.timeline).

It costs a fixed number of queries however long the record grows. Callers import from here;
the tunables (page sizes, timeouts, nesting) stay in the module that reads them, so patch them
there.
"""

from audit.selectors.access import can_browse
from audit.selectors.browse import AuditFilters, SearchTooSlow, audit_events_page
from audit.selectors.summaries import event_summary

__all__ = [
    "AuditFilters",
    "SearchTooSlow",
    "audit_events_page",
    "can_browse",
    "event_summary",
]
