"""Admin pages that are not a model's add/change form: the policy dry run, the one-time secrets."""

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from approvals.admin.forms import DryRunForm
from approvals.services.policies import policy_verdict


def policy_dry_run(request, model_admin):
    """Which policy would decide a pasted gate request, and why. Reads policies, writes nothing.

    The evaluation is the same pure `evaluate` the gate service runs, over the same rules, so
    what the admin sees here is what an orchestrator would get (bar the execution checks, such
    as a workflow conflict, that need a stored execution).
    """
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    form = DryRunForm(request.POST or None)
    verdict = None
    if request.method == "POST" and form.is_valid():
        verdict = policy_verdict(form.cleaned_data["request"])
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Policy dry run",
        "form": form,
        "verdict": verdict,
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
