"""Reading the decision record (DESIGN sections 7 and 8): the auditors' browser and its CSV
export. Plain function views; what a user may not read answers 404. (An execution's timeline is
approvals', which owns executions.)"""

import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from audit import kinds, selectors
from audit.actors import named_user
from audit.csv_export import export_csv
from audit.models import MAX_SEQ
from gatekeeper.text_input import FilterField

FILTER_KEYS = ("q", "kind", "workflow", "actor", "since", "until", "search")
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class MomentField(forms.Field):
    """A date (2026-11-23) or a date and time (2026-11-23 14:30); UTC unless it names an offset.

    As an upper bound (`until`) it is returned as the exclusive end: a date alone reaches to the
    end of that day, a moment includes itself.
    """

    default_error_messages = {
        "invalid": "Enter a date like 2026-11-23 or a date and time like 2026-11-23 14:30 (UTC "
        "unless you add an offset such as +02:00).",
    }

    def __init__(self, *, upper: bool = False, **kwargs):
        self.upper = upper
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        try:
            if DATE_ONLY.fullmatch(value):
                moment = datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
                return moment + timedelta(days=1) if self.upper else moment
            moment = parse_datetime(value) if len(value) <= 40 else None
            if moment is not None:
                if timezone.is_naive(moment):
                    moment = moment.replace(tzinfo=UTC)
                return moment + timedelta(microseconds=1) if self.upper else moment
        except (ValueError, OverflowError):
            pass
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class AuditFilterForm(forms.Form):
    q = FilterField(label="Search")
    kind = forms.ChoiceField(required=False, choices=lambda: [("", "Any kind"), *kinds.choices()])
    workflow = FilterField()
    actor = FilterField()
    since = MomentField()
    until = MomentField(upper=True)
    # "threads" once a text search ran too long: its later pages and export search the same way.
    search = forms.ChoiceField(required=False, choices=[("", "everything"), ("threads", "threads")])
    before = forms.IntegerField(required=False, min_value=1, max_value=MAX_SEQ)
    after = forms.IntegerField(required=False, min_value=1, max_value=MAX_SEQ)

    def clean_actor(self) -> str:
        # A bare name means a user: "alice" is user:alice. Exact, so it stays an index lookup.
        actor = self.cleaned_data["actor"]
        if actor and ":" not in actor and actor != "system":
            return named_user(actor)
        return actor

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since >= until:
            raise ValidationError("“Since” must come before “until”.", code="range")
        return cleaned

    def filters(self) -> selectors.AuditFilters:
        data = self.cleaned_data
        return selectors.AuditFilters(
            q=data["q"],
            kind=data["kind"],
            workflow=data["workflow"],
            actor=data["actor"],
            since=data["since"],
            until=data["until"],
            text=data["search"] != "threads",
        )

    def query(self, **changes) -> str:
        """The filters as typed, for links, with some changed (a page cursor, the search)."""
        values = {key: self.data.get(key, "").strip() for key in FILTER_KEYS}
        values.update(changes)
        return urlencode({key: value for key, value in values.items() if value})


@require_GET
@login_required
def audit_browser(request):
    if not selectors.can_browse(request.user):
        raise Http404("no such page")
    form = AuditFilterForm(request.GET)
    page, keep = None, {}
    if form.is_valid():
        try:
            page = selectors.audit_events_page(
                filters=form.filters(),
                before=form.cleaned_data["before"],
                after=form.cleaned_data["after"],
            )
        except selectors.SearchTooSlow:
            form.add_error(
                None,
                "The search took too long. Narrow it with a kind, actor, workflow or time range.",
            )
            page = None
        if page is not None and page.threads_only:
            keep = {"search": "threads"}
    context = {
        "form": form,
        "page": page,
        "kinds": kinds.choices(),
        "export_url": f"{reverse('audit:export')}?{form.query(**keep)}".rstrip("?"),
        "newer_url": f"?{form.query(after=page.newer, **keep)}" if page and page.newer else "",
        "older_url": f"?{form.query(before=page.older, **keep)}" if page and page.older else "",
    }
    template = "audit/browser.html#results" if request.htmx else "audit/browser.html"
    return TemplateResponse(request, template, context)


@require_GET
@login_required
def audit_export(request):
    if not selectors.can_browse(request.user):
        raise Http404("no such page")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
            for field, errors in form.errors.items()
        )
        return HttpResponse(
            f"Nothing was exported: {problems}\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    response = StreamingHttpResponse(
        export_csv(form.filters()), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="gatekeeper-audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
