"""The reviewer dashboard (DESIGN section 7): plain function views, one service call each."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from approvals import forms, wording
from approvals.errors import GatekeeperError, NotFound, ValidationFailed
from approvals.models import PausePacket
from approvals.permissions import can_resume
from approvals.selectors import executions, packets, timeline
from approvals.selectors import queue as queues
from approvals.services import review
from audit.jsontext import pretty_json
from audit.models import MAX_SEQ
from audit.selectors.access import can_browse

STATUS_TABS = [
    ("open", "Open"),
    ("pending", "Pending"),
    ("re_review", "Re-review"),
    ("reconciling", "Reconciling"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("expired", "Expired"),
    ("all", "All"),
]


@require_GET
@login_required
def queue(request):
    filters = queues.QueueFilters.from_query(request.GET)
    page, counts = queues.queue_page(request.user, filters, request.GET.get("page"))
    tabs = [
        {
            "label": label,
            "status": status,
            "url": "?" + filters.as_query(status=status),
            "count": counts[status],
            "current": filters.status == status,
        }
        for status, label in STATUS_TABS
    ]
    context = {
        "page": page,
        "tabs": tabs,
        "filters": filters,
        "previous_url": "?" + filters.as_query(page=page.number - 1) if page.has_previous() else "",
        "next_url": "?" + filters.as_query(page=page.number + 1) if page.has_next() else "",
    }
    template = "approvals/queue.html#queue" if request.htmx else "approvals/queue.html"
    return TemplateResponse(request, template, context)


@require_GET
@login_required
def open_count(request):
    """The open-packet count in the top bar; htmx refreshes it after every action."""
    return TemplateResponse(
        request, "approvals/_open_count.html", {"open_count": queues.open_count(request.user)}
    )


def _packet_or_404(request, packet_id) -> PausePacket:
    packet = packets.packet_for_user(request.user, packet_id)
    if packet is None:
        raise Http404("no such approval")
    return packet


def _packet_context(request, packet: PausePacket, **extra) -> dict:
    votes = packets.packet_votes(packet)
    voters = [vote.user.get_username() for vote in votes]
    outcome = packets.approval_preview(packet, voters=voters)
    username = request.user.get_username()
    return {
        "packet": packet,
        "execution": packet.execution,
        "votes": votes,
        "decision_state": packets.decision_state(packet.status, packet.snapshot_hash, len(votes)),
        "can_resume": can_resume(request.user, packet),
        "is_requester": review.is_requester(packet, request.user),
        "has_voted": username in voters,
        "approve_consequence": wording.approve_consequence(packet, outcome, votes=len(voters)),
        "take_over_consequence": wording.take_over_consequence(packet),
        "args_json": pretty_json(packet.effective_args),
        "original_args_json": pretty_json(packet.args),
        "record": packets.execution_recent_record(packet),
        **extra,
    }


@require_GET
@login_required
def packet_detail(request, packet_id):
    packet = _packet_or_404(request, packet_id)
    template = "approvals/packet.html#decision" if request.htmx else "approvals/packet.html"
    return TemplateResponse(request, template, _packet_context(request, packet))


def _act(request, packet_id, action):
    """Run one reviewer action and answer: a fragment for htmx, a 303 to the packet otherwise.

    A late or refused action is not an error page: the reviewer sees what happened instead.
    """
    _packet_or_404(request, packet_id)
    form_errors = {}
    try:
        result = action()
        level, text = messages.SUCCESS, result.message[:1].upper() + result.message[1:] + "."
    except NotFound:
        raise Http404("no such approval") from None
    except ValidationFailed as error:
        form_errors = {e["field"]: e["message"] for e in error.details.get("errors", [])}
        level, text = messages.ERROR, "Nothing was changed: " + error.message
    except GatekeeperError as error:
        level, text = messages.WARNING, error.message[:1].upper() + error.message[1:] + "."
    if request.htmx or form_errors:
        context = _packet_context(
            request,
            _packet_or_404(request, packet_id),
            notice={"level": level, "text": text},
            form_errors=form_errors,
            submitted_args=request.POST.get("args", ""),
        )
        if not request.htmx:  # a plain form with an error: the page again, nothing changed
            return TemplateResponse(request, "approvals/packet.html", context, status=400)
        response = TemplateResponse(request, "approvals/packet.html#decision", context)
        return trigger_client_event(response, "packetChanged", {"id": str(packet_id)})
    messages.add_message(request, level, text)
    # 303: the browser follows with a GET, so a reload never repeats the action.
    response = HttpResponseRedirect(reverse("approvals:packet", args=[packet_id]))
    response.status_code = 303
    return response


@require_POST
@login_required
def approve(request, packet_id):
    def action():
        return review.packet_approve(
            packet_id=packet_id,
            user=request.user,
            comment=forms.review_comment(request.POST.get("comment", "")),
            edited_args=forms.review_edited_args(request.POST.get("args", "")),
        )

    return _act(request, packet_id, action)


def _with_comment(request, packet_id, service):
    """An action that takes only the reviewer's comment."""
    return _act(
        request,
        packet_id,
        lambda: service(
            packet_id=packet_id,
            user=request.user,
            comment=forms.review_comment(request.POST.get("comment", "")),
        ),
    )


@require_POST
@login_required
def reject(request, packet_id):
    return _with_comment(request, packet_id, review.packet_reject)


@require_POST
@login_required
def take_over(request, packet_id):
    return _with_comment(request, packet_id, review.packet_take_over)


@require_POST
@login_required
def comment(request, packet_id):
    return _with_comment(request, packet_id, review.packet_comment)


@require_POST
@login_required
def reconcile(request, packet_id):
    def action():
        return review.packet_reconcile(
            packet_id=packet_id,
            user=request.user,
            happened=forms.review_happened(request.POST.get("happened")),
            comment=forms.review_comment(request.POST.get("comment", "")),
        )

    return _act(request, packet_id, action)


@require_GET
@login_required
def events(request):
    """The pages' event stream where no ASGI server runs it (gthread, runserver): 204 tells
    the browser not to reconnect, and the pages keep refreshing themselves on a timer. Under
    gatekeeper.asgi, approvals/page_events.py answers this URL."""
    return HttpResponse(status=204)


def _seq(query, key) -> int | None:
    value = query.get(key, "")
    # isdigit() alone passes "²", which int() refuses.
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_SEQ else None


@require_GET
@login_required
def execution_timeline(request, execution_id):
    execution = executions.execution_for_user(user=request.user, execution_id=execution_id)
    if execution is None:
        raise Http404("no such execution")
    record = timeline.execution_timeline(
        user=request.user,
        execution=execution,
        before=_seq(request.GET, "before"),
        after=_seq(request.GET, "after"),
    )
    template = "audit/execution.html#timeline" if request.htmx else "audit/execution.html"
    context = {
        "execution": execution,
        "timeline": record,
        "can_browse": can_browse(request.user),
    }
    return TemplateResponse(request, template, context)
