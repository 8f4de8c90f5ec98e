"""/metrics/: the approval SLA as charts and tables, and the same figures for Prometheus."""

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from approvals.metrics import charts, exposition
from approvals.models import PausePacket
from approvals.selectors import sla as figures
from approvals.selectors.packets import packets_visible_to
from audit.selectors.access import can_browse


@require_GET
@login_required
def sla(request):
    days, days_error = figures.parse_days(request.GET.get("days"))
    # Whoever may read the whole decision record sees the whole organisation's figures.
    whole_organisation = can_browse(request.user)
    packets = PausePacket.objects.all() if whole_organisation else packets_visible_to(request.user)
    report = figures.sla_report(packets, days=days)
    context = {
        "whole_organisation": whole_organisation,
        "scope_suffix": "" if whole_organisation else " you may view",
        "report": report,
        "days_error": days_error,
        "max_days": figures.MAX_DAYS,
        "max_bars": charts.MAX_BARS,
        "charts": charts.sla_charts(report),
        "workflow_rows": charts.latency_rows(report.by_workflow),
        "owner_rows": charts.latency_rows(report.by_owner),
    }
    return TemplateResponse(request, "metrics/metrics.html", context)


def _bearer_token_matches(request, expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold anything.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


@never_cache
@require_GET
def prometheus(request):
    """For Prometheus, not people: a bearer token instead of a session; 404 when switched off."""
    expected = settings.GATEKEEPER_METRICS_TOKEN
    if not expected:
        raise Http404("metrics export is not enabled")
    if not _bearer_token_matches(request, expected):
        response = HttpResponse(
            "a bearer token is required\n", status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="gatekeeper-metrics"'
        return response
    days, days_error = figures.parse_days(request.GET.get("days"))
    if days_error:
        return HttpResponse(days_error + "\n", status=400, content_type="text/plain; charset=utf-8")
    return HttpResponse(exposition.exposition(days=days), content_type=exposition.CONTENT_TYPE)
