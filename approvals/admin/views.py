"""Admin pages that are not a model's add/change form: the policy dry run, the one-time secrets.

The dry run's picker of recent gate checks is shared with the policy form, which dry-runs the
policy being edited next to the stored ones.
"""

import json
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from approvals.admin.forms import DryRunForm
from approvals.models import GateCheck
from approvals.policy_rules import Verdict
from approvals.selectors.checks import gate_checks_recent
from approvals.services.policies import policy_verdict, policy_verdicts_with_draft

MAX_PICKER_PAGE = 1000


@dataclass
class DryRunPanel:
    """The dry run as a page shows it: the request form, the check picker, the verdicts."""

    form: DryRunForm
    search: str
    page: int
    checks: list = field(default_factory=list)
    has_next: bool = False
    stored: Verdict | None = None
    draft: Verdict | None = None


def picked_request_text(check_id: str) -> str | None:
    """A recorded gate check's request, as the text the dry run form takes; None if unknown."""
    try:
        check = GateCheck.objects.only("request").get(id=check_id)
    except (GateCheck.DoesNotExist, ValidationError):  # ValidationError: not a UUID
        return None
    return json.dumps(check.request, indent=2, ensure_ascii=False)


def _page_number(text) -> int:
    try:
        return min(max(int(text), 1), MAX_PICKER_PAGE)
    except (TypeError, ValueError):
        return 1


def dry_run_panel(form: DryRunForm, *, search: str, page, draft: dict | None = None) -> DryRunPanel:
    """Picker rows for the search, and the verdicts when the form holds a valid request."""
    search = search.strip()[:200]
    panel = DryRunPanel(form=form, search=search, page=_page_number(page))
    panel.checks, panel.has_next = gate_checks_recent(search=search, page=panel.page)
    if form.is_bound and form.is_valid():
        request = form.cleaned_data["request"]
        if draft is None:
            panel.stored = policy_verdict(request)
        else:
            panel.stored, panel.draft = policy_verdicts_with_draft(request, draft)
    return panel


def policy_dry_run(request, model_admin):
    """Which policy would decide a pasted gate request, and why. Reads policies, writes nothing.

    The evaluation is the same pure `evaluate` the gate service runs, over the same rules, so
    what the admin sees here is what an orchestrator would get (bar the execution checks, such
    as a workflow conflict, that need a stored execution).
    """
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    data = request.POST or None
    if request.method != "POST" and "check" in request.GET:
        # A picked check is evaluated at once: its request is what an agent really sent.
        picked = picked_request_text(request.GET["check"])
        data = {"request": picked} if picked is not None else None
    form = DryRunForm(data)
    panel = dry_run_panel(form, search=request.GET.get("q", ""), page=request.GET.get("page"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Policy dry run",
        "form": form,
        "panel": panel,
        "verdict": panel.stored,
    }
    return TemplateResponse(request, "admin/approvals/policy/dry_run.html", context)


def one_time_secrets(request, model_admin, *, title: str, accounts: list[tuple]):
    """Show freshly made tokens (and webhook secrets) on this response only.

    They are rendered straight into the answer to the POST that made them, rather than parked
    in a message cookie or the session until the next page: the token never rests anywhere but
    as a hash in the database. `no-store` keeps the page out of the browser's cache too.
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "accounts": accounts,
    }
    response = TemplateResponse(
        request, "admin/approvals/serviceaccount/secrets_once.html", context
    )
    add_never_cache_headers(response)
    return response
