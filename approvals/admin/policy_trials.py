"""Admin pages for trying a policy before it decides: its shadow report, its promotion, replay.

A shadow policy's report reads what the gate stored with each check (GateCheck.shadow) in a
fixed number of queries, whatever the traffic; a replay streams the recorded checks through
the gate's own evaluation (approvals.services.replay). Neither writes anything; promotion goes
through policy_save like every other change (a version, `policy.changed`).
"""

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from approvals.admin.forms import StorableJSONField
from approvals.models import GateCheck, Policy
from approvals.policy_documents import policy_problems
from approvals.services.policies import policy_document, policy_promote
from approvals.services.replay import replay, rules_with_documents

SHADOW_LIST_LIMIT = 50
# Per (answer given, answer the shadow policy would have given): how many checks. Every check
# made while the policy was a shadow holds one entry for it; the containment test finds them
# through the gate_check_shadow index.
_SHADOW_KINDS = """
SELECT c.decision, entry ->> 'decision', (entry ->> 'differs')::boolean, count(*)
  FROM approvals_gatecheck c
 CROSS JOIN LATERAL jsonb_array_elements(c.shadow) AS entry
 WHERE c.shadow IS NOT NULL AND c.shadow @> %s::jsonb AND entry ->> 'policy' = %s
 GROUP BY 1, 2, 3
"""


def differs_filter(name: str) -> list[dict]:
    """The containment value that finds the checks policy `name` would have answered otherwise."""
    return [{"policy": name, "differs": True}]


def policy_shadow_report(request, model_admin, object_id):
    """How many checks a shadow policy has seen and would have answered otherwise, and which."""
    policy = _policy(request, model_admin, object_id)
    with connection.cursor() as cursor:
        cursor.execute(_SHADOW_KINDS, [json.dumps([{"policy": policy.name}]), policy.name])
        rows = cursor.fetchall()
    kinds = sorted(
        ((given, would, count) for given, would, differs, count in rows if differs),
        key=lambda row: (-row[2], row[0], row[1]),
    )
    checks = list(
        GateCheck.objects.filter(shadow__contains=differs_filter(policy.name))
        .select_related("execution")
        .order_by("-created_at", "-id")[:SHADOW_LIST_LIMIT]
    )
    for check in checks:
        check.would = next(e for e in check.shadow if e["policy"] == policy.name)
    differing = sum(count for _, _, count in kinds)
    context = {
        **_context(request, model_admin, policy, f"Shadow report: {policy.name}"),
        "evaluated": sum(row[3] for row in rows),
        "differing": differing,
        "kinds": kinds,
        "checks": checks,
        "shown_limit": SHADOW_LIST_LIMIT if differing > SHADOW_LIST_LIMIT else None,
        "can_promote": policy.mode == Policy.Mode.SHADOW
        and model_admin.has_change_permission(request, policy),
    }
    return TemplateResponse(request, "admin/approvals/policy/shadow_report.html", context)


@require_POST
def policy_promote_view(request, model_admin, object_id):
    """One action: the shadow policy becomes enforced, as a new version in the record."""
    policy = get_object_or_404(Policy, pk=object_id)
    if not model_admin.has_change_permission(request, policy):
        raise PermissionDenied
    promote_policies(request, model_admin, [policy])
    return HttpResponseRedirect(reverse("admin:approvals_policy_change", args=[policy.pk]))


def promote_policies(request, model_admin, policies) -> None:
    """Promote each shadow policy given; say which were and which were enforced already."""
    actor = f"user:{request.user.get_username()}"
    for policy in policies:
        if policy.mode != Policy.Mode.SHADOW:
            model_admin.message_user(
                request, f"Nothing changed: {policy.name} is enforced already.", messages.INFO
            )
            continue
        promoted, _ = policy_promote(policy=policy, actor=actor)
        model_admin.log_change(request, promoted, f"Promoted to enforce (v{promoted.version}).")
        model_admin.message_user(
            request,
            f"Promoted {promoted.name} to enforce (v{promoted.version}): it decides from the "
            "next gate check on.",
            messages.SUCCESS,
        )


class ReplayForm(forms.Form):
    document = StorableJSONField(
        label="Draft policy (JSON)",
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "spellcheck": "false"}),
        help_text="Evaluated as if enforced, in place of the stored policy of the same name.",
    )
    days = forms.IntegerField(label="Replay the last N days", min_value=1, max_value=365, initial=7)

    def __init__(self, *args, policy: Policy | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy

    def clean_document(self):
        document = self.cleaned_data["document"]
        problems = policy_problems(document)
        if problems:
            raise forms.ValidationError([f"{field}: {message}" for field, message in problems])
        if self.policy is not None and document["name"] != self.policy.name:
            raise forms.ValidationError(
                f"name: must stay {self.policy.name!r} (replay a new policy from the list)"
            )
        return document


def policy_replay(request, model_admin, object_id=None):
    """Replay a draft of a policy (or a new one) against the last N days of checks."""
    policy = _policy(request, model_admin, object_id) if object_id is not None else None
    initial = {"document": {**policy_document(policy), "mode": "enforce"}} if policy else {}
    form = ReplayForm(request.POST or None, initial=initial, policy=policy)
    report = None
    if request.method == "POST" and form.is_valid():
        rules = rules_with_documents([form.cleaned_data["document"]], enforce=True)
        report = replay(rules, days=form.cleaned_data["days"])
    title = f"Replay a draft of {policy.name}" if policy else "Replay a draft policy"
    context = {
        **_context(request, model_admin, policy, title),
        "form": form,
        "report": report,
    }
    return TemplateResponse(request, "admin/approvals/policy/replay.html", context)


def _policy(request, model_admin, object_id) -> Policy:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        return Policy.objects.get(pk=int(object_id))
    except (ValueError, Policy.DoesNotExist):
        raise Http404("no such policy") from None


def _context(request, model_admin, policy, title) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "policy": policy,
    }
