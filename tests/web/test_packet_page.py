"""/approvals/<uuid>/: the whole pause packet, in words."""

import uuid
from datetime import timedelta

from django.utils import timezone

from approvals.models import PausePacket
from approvals.services.executions import step_record_outcome


def test_anonymous_goes_to_login_and_outsiders_get_404(client, charlie, packet_for):
    packet = packet_for()
    assert client.get(f"/approvals/{packet.id}/").status_code == 302
    client.force_login(charlie)
    assert client.get(f"/approvals/{packet.id}/").status_code == 404
    assert client.get(f"/approvals/{uuid.uuid4()}/").status_code == 404


def test_wrong_method_is_405(client, alice, packet_for):
    client.force_login(alice)
    assert client.post(f"/approvals/{packet_for().id}/").status_code == 405


def test_the_page_shows_the_whole_packet(client, alice, packet_for, policy):
    policy("privileged-iam", match={"tool": "iam.*"}, required_approvals=2)
    packet = packet_for(execution__on_behalf_of="dana")
    client.force_login(alice)
    html = client.get(f"/approvals/{packet.id}/").content.decode()
    for text in (
        "onboard-42",
        "set_privileges",
        "iam.grant",
        "&quot;role&quot;: &quot;admin&quot;",
        "employee_record",
        "observed",
        "privileged-iam",
        "dana",
        "0 of 2",
        "reviewers",
        "hr-onboarding",
        "Fresh until",
        "Decide by",
        "packet.created",
        "Full timeline",
    ):
        assert text in html, text
    assert "records your vote: 1 of 2" in html


def test_the_approve_button_says_it_will_send_stale_context_back(client, alice, packet_for):
    packet = packet_for()
    PausePacket.objects.filter(id=packet.id).update(
        fresh_until=timezone.now() - timedelta(minutes=12)
    )
    client.force_login(alice)
    html = client.get(f"/approvals/{packet.id}/").content.decode()
    assert "Approving now sends this back to re-review: the context went stale 12" in html


def test_the_approve_button_says_it_will_go_to_reconcile(client, alice, packet_for, agent):
    packet = packet_for()
    step_record_outcome(
        service_account=agent,
        thread_id="onboard-42",
        step_index=3,
        side_effect="indeterminate",
        detail={},
    )
    client.force_login(alice)
    assert "sends this to reconcile" in client.get(f"/approvals/{packet.id}/").content.decode()


def test_agent_text_stays_inert(client, alice, packet_for):
    packet = packet_for(
        action__args={"body": "<script>alert(1)</script>", "<b>key</b>": "x"},
        step__name="<img src=x onerror=alert(2)>",
    )
    client.force_login(alice)
    html = client.get(f"/approvals/{packet.id}/").content.decode()
    assert (
        "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    assert "<img src=x" not in html and "<b>key</b>" not in html


def test_the_requester_is_told_about_four_eyes(client, make_user, packet_for):
    dana = make_user("dana", "reviewers")
    packet = packet_for(execution__on_behalf_of="dana")
    client.force_login(dana)
    html = client.get(f"/approvals/{packet.id}/").content.decode()
    assert "Four-eyes" in html and f'action="/approvals/{packet.id}/approve/"' not in html


def test_htmx_gets_the_decision_fragment(client, alice, packet_for, htmx):
    packet = packet_for()
    client.force_login(alice)
    html = client.get(f"/approvals/{packet.id}/", headers=htmx).content.decode()
    assert html.lstrip().startswith('<section id="decision"') and "<html" not in html
