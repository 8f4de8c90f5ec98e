"""The admin site: Django's, with one check in front of every admin page.

Django's change lists put a filter's value (`?workflow__exact=...`) into SQL as it came, so a
NUL in it was a DataError, a 500, on every list with a filter, ours and the libraries' alike;
a 20-digit year in a date drill-down was an OverflowError, an empty `?_to_field=` on a change
form a FieldDoesNotExist.
Every admin view passes through AdminSite.admin_view, so the check stands there once.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import TO_FIELD_VAR
from django.http import HttpResponseRedirect

from audit.jsontext import visible
from gatekeeper.text_input import query_problems

# A change list's date drill-down (`?at__year=...`): Django makes a datetime of each part and
# lets an OverflowError out for a 20-digit year.
DATE_PARTS = ("__year", "__month", "__day")


def _date_part(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 4


def admin_query_problems(query) -> dict[str, str]:
    """Values Django's admin views let through to an exception of their own: a date part past
    any year, and an empty `_to_field` (the change form looks up a field named "")."""
    problems = {
        name: "is not a year, month or day"
        for name, value in query.items()
        if name.endswith(DATE_PARTS) and not _date_part(value)
    }
    if query.get(TO_FIELD_VAR) == "":
        problems[TO_FIELD_VAR] = "names no field"
    return problems


class GatekeeperAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        def refuse_bad_input(request, *args, **kwargs):
            problems = {**query_problems(request.GET), **admin_query_problems(request.GET)}
            if request.method == "POST":
                problems.update(query_problems(request.POST))
                problems.update(admin_query_problems(request.POST))
            if not problems:
                return guarded(request, *args, **kwargs)
            # The page again without what was sent: a list unfiltered, a form as it was.
            for name, problem in problems.items():
                shown = visible(name[:40])  # the name was typed by whoever sent the request
                messages.error(request, f"“{shown}” {problem}, so it was ignored.")
            return HttpResponseRedirect(request.path, status=303)

        return refuse_bad_input
