"""Reads of recorded gate checks."""

from django.db.models import Q

from approvals.models import GateCheck


def gate_checks_recent(*, search: str = "", page: int = 1, per_page: int = 10):
    """Recent gate checks, newest first, for the admin dry run to pick one from: (rows, more).

    Searched by thread, tool or workflow. One query: a page is per_page + 1 rows (the extra one
    only says a next page exists), so no COUNT over the whole table.
    """
    checks = GateCheck.objects.select_related("execution").order_by("-created_at", "-id")
    if search:
        checks = checks.filter(
            Q(execution__thread_id__icontains=search)
            | Q(tool__icontains=search)
            | Q(execution__workflow__icontains=search)
        )
    page = max(page, 1)
    start = (page - 1) * per_page
    rows = list(checks[start : start + per_page + 1])
    return rows[:per_page], len(rows) > per_page
