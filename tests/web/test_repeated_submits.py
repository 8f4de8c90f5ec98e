"""A form sent twice, or sent from a page that is out of date, gets a clear answer, never a 500.

Each action's second submit changes nothing: no second audit event, no half-written decision.
"""

import json

import pytest

from approvals.models import PausePacket, StepOutcome
from approvals.services.review import packet_approve
from audit.models import AuditEvent

ORIGINAL = {"user": "new.hire", "role": "admin"}
EDITED = {"user": "new.hire", "role": "viewer"}


def _post(client, packet, action, data, htmx_headers):
    response = client.post(
        f"/approvals/{packet.id}/{action}/", data, headers=htmx_headers, follow=not htmx_headers
    )
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture(params=["plain", "htmx"])
def headers(request, htmx):
    return htmx if request.param == "htmx" else {}


def test_approving_the_original_args_after_an_edit_says_why_and_changes_nothing(
    client, alice, packet_for, policy, headers
):
    policy("editable-2", allow_edit=True, required_approvals=2)
    packet = packet_for()
    client.force_login(alice)
    _post(client, packet, "approve", {"args": json.dumps(ORIGINAL)}, headers)
    _post(client, packet, "approve", {"args": json.dumps(EDITED)}, headers)
    events, votes = AuditEvent.objects.count(), packet.votes.count()
    html = _post(client, packet, "approve", {"args": json.dumps(ORIGINAL)}, headers)
    assert "You approved these args before they were edited" in html
    packet.refresh_from_db()
    assert packet.status == "pending" and packet.effective_args == EDITED
    assert (AuditEvent.objects.count(), packet.votes.count()) == (events, votes)


@pytest.mark.parametrize(
    ("action", "data", "closing_kind", "second_answer"),
    [
        ("reject", {"comment": "no"}, "packet.rejected", "Already decided (rejected) by alice"),
        ("takeover", {}, "execution.taken_over", "Already decided (terminated) by alice"),
    ],
)
def test_a_second_submit_of_a_closing_action_says_it_is_decided(
    client, alice, packet_for, headers, action, data, closing_kind, second_answer
):
    packet = packet_for()
    client.force_login(alice)
    _post(client, packet, action, data, headers)
    events = AuditEvent.objects.count()
    assert second_answer in _post(client, packet, action, data, headers)
    assert AuditEvent.objects.count() == events
    assert AuditEvent.objects.filter(kind=closing_kind).count() == 1


@pytest.mark.parametrize(
    ("happened", "second_answer"),
    [
        ("yes", "Already decided (applied) by alice"),
        ("no", "Only a packet in reconciling can be reconciled"),
    ],
)
def test_a_second_reconcile_says_what_happened_first(
    client, alice, packet_for, headers, happened, second_answer
):
    packet = packet_for(action__side_effect="indeterminate")
    packet_approve(packet_id=packet.id, user=alice)
    client.force_login(alice)
    _post(client, packet, "reconcile", {"happened": happened}, headers)
    events, outcomes = AuditEvent.objects.count(), StepOutcome.objects.count()
    assert second_answer in _post(client, packet, "reconcile", {"happened": happened}, headers)
    assert (AuditEvent.objects.count(), StepOutcome.objects.count()) == (events, outcomes)


def test_a_second_approve_of_the_same_args_says_the_vote_already_counts(
    client, alice, packet_for, policy, headers
):
    policy("two", required_approvals=2, allow_edit=True)
    packet = packet_for()
    client.force_login(alice)
    _post(client, packet, "approve", {"args": json.dumps(EDITED)}, headers)
    events = AuditEvent.objects.count()
    html = _post(client, packet, "approve", {"args": json.dumps(EDITED)}, headers)
    assert "You already approved this; another reviewer must add theirs." in html
    assert AuditEvent.objects.count() == events
    assert PausePacket.objects.get(id=packet.id).votes.count() == 1
