"""The admin site: Django's, with one check in front of every admin page.

Django's change lists put a filter's value (`?workflow__exact=...`) into SQL as it came, so a
NUL in it was a DataError, a 500, on every list with a filter, ours and the libraries' alike.
Every admin view passes through AdminSite.admin_view, so the check stands there once.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from gatekeeper.text_input import query_problems


class GatekeeperAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        def refuse_unstorable_text(request, *args, **kwargs):
            problems = {**query_problems(request.GET)}
            if request.method == "POST":
                problems.update(query_problems(request.POST))
            if not problems:
                return guarded(request, *args, **kwargs)
            # The page again without what was sent: a list unfiltered, a form as it was.
            for name, problem in problems.items():
                messages.error(request, f"“{name[:40]}” {problem}, so it was ignored.")
            return HttpResponseRedirect(request.path, status=303)

        return refuse_unstorable_text
