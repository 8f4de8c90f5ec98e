"""POST approve / reject / reconcile / takeover / comment from the browser."""

import pytest

from approvals.models import PausePacket
from approvals.services.review import packet_approve

ACTIONS = ["approve", "reject", "reconcile", "takeover", "comment"]


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_is_sent_to_login(client, packet_for, action):
    response = client.post(f"/approvals/{packet_for().id}/{action}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert PausePacket.objects.get().status == "pending"


@pytest.mark.parametrize("action", ACTIONS)
def test_outsiders_get_404_and_change_nothing(client, charlie, packet_for, action):
    packet = packet_for()
    client.force_login(charlie)
    assert (
        client.post(
            f"/approvals/{packet.id}/{action}/", {"comment": "x", "happened": "yes"}
        ).status_code
        == 404
    )
    assert PausePacket.objects.get().status == "pending"


@pytest.mark.parametrize("action", ACTIONS)
def test_get_is_405(client, alice, packet_for, action):
    client.force_login(alice)
    assert client.get(f"/approvals/{packet_for().id}/{action}/").status_code == 405


def test_actions_need_csrf(alice, packet_for):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(f"/approvals/{packet_for().id}/approve/").status_code == 403
    assert PausePacket.objects.get().status == "pending"


def test_a_plain_form_approve_redirects_with_303_and_states_the_outcome(client, alice, packet_for):
    packet = packet_for()
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/approve/", {"comment": "ok"})
    assert response.status_code == 303 and response["Location"] == f"/approvals/{packet.id}/"
    page = client.get(response["Location"]).content.decode()
    assert "Approved: the orchestrator may run the step." in page
    assert PausePacket.objects.get().status == "approved"


def test_htmx_approve_returns_the_fragment_and_fires_an_event(client, alice, packet_for, htmx):
    packet = packet_for()
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/approve/", headers=htmx)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="decision"')
    assert "packetChanged" in response["HX-Trigger"]
    assert "Approved: the orchestrator may run the step." in html


def test_a_late_approval_says_who_decided_instead_of_an_error(client, alice, bob, packet_for):
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=bob)
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/approve/", follow=True)
    assert response.status_code == 200
    assert "Already decided (approved) by bob at" in response.content.decode()


def test_invalid_edited_json_is_a_form_error_that_changes_nothing(
    client, alice, packet_for, policy
):
    policy("editable", allow_edit=True)
    packet = packet_for()
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/approve/", {"args": "{not json"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "is not valid JSON" in html and "{not json" in html
    packet.refresh_from_db()
    assert packet.status == "pending" and packet.edited_args is None and not packet.votes.exists()


def test_edited_args_are_approved(client, alice, packet_for, policy):
    policy("editable", allow_edit=True)
    packet = packet_for()
    client.force_login(alice)
    client.post(
        f"/approvals/{packet.id}/approve/", {"args": '{"user": "new.hire", "role": "viewer"}'}
    )
    packet.refresh_from_db()
    assert packet.status == "approved" and packet.effective_args == {
        "user": "new.hire",
        "role": "viewer",
    }


def test_four_eyes_is_enforced_in_the_browser(client, make_user, packet_for):
    dana = make_user("dana", "reviewers")
    packet = packet_for(execution__on_behalf_of="dana")
    client.force_login(dana)
    page = client.post(f"/approvals/{packet.id}/approve/", follow=True).content.decode()
    assert "Four-eyes" in page and PausePacket.objects.get().status == "pending"


def test_a_requester_named_in_another_case_gets_no_approve_button(client, alice, packet_for):
    packet = packet_for(execution__on_behalf_of="ALICE")
    client.force_login(alice)
    page = client.get(f"/approvals/{packet.id}/").content.decode()
    assert "Four-eyes" in page and "Approve</button>" not in page


def test_reject(client, alice, packet_for):
    packet = packet_for()
    client.force_login(alice)
    client.post(f"/approvals/{packet.id}/reject/", {"comment": "wrong role"})
    packet.refresh_from_db()
    assert (packet.status, packet.comment) == ("rejected", "wrong role")


def test_reconcile_needs_an_answer_and_records_it(client, alice, packet_for):
    packet = packet_for(action__side_effect="indeterminate")
    packet_approve(packet_id=packet.id, user=alice)
    client.force_login(alice)
    assert (
        client.post(f"/approvals/{packet.id}/reconcile/", {"happened": "maybe"}).status_code == 400
    )
    client.post(f"/approvals/{packet.id}/reconcile/", {"happened": "yes"})
    packet.refresh_from_db()
    assert (packet.status, packet.decision) == ("applied", "skip")


def test_take_over(client, alice, packet_for):
    packet = packet_for()
    client.force_login(alice)
    page = client.post(f"/approvals/{packet.id}/takeover/", follow=True).content.decode()
    assert "You now own onboard-42" in page
    assert PausePacket.objects.get().status == "terminated"


def test_comment_and_empty_comment(client, alice, packet_for):
    packet = packet_for()
    client.force_login(alice)
    assert (
        client.post(f"/approvals/{packet.id}/comment/", {"comment": "checking"}).status_code == 303
    )
    assert client.post(f"/approvals/{packet.id}/comment/", {"comment": " "}).status_code == 400


def test_a_viewer_without_resume_authority_gets_no_approve_button(client, make_user, packet_for):
    from django.contrib.auth.models import Permission

    from approvals.models import PausePacketUserObjectPermission

    viewer = make_user("vic")
    packet = packet_for()
    PausePacketUserObjectPermission.objects.create(
        user=viewer,
        content_object=packet,
        permission=Permission.objects.get(codename="view_pausepacket"),
    )
    client.force_login(viewer)
    html = client.get(f"/approvals/{packet.id}/").content.decode()
    assert "approving it belongs to reviewers" in html and "Approve</button>" not in html
    assert "Reject</button>" in html and "Take over</button>" in html
    answer = client.post(f"/approvals/{packet.id}/approve/", follow=True).content.decode()
    assert "no authority to decide it" in answer
    assert PausePacket.objects.get().status == "pending"


HOSTILE_FIELDS = [
    ("approve", {"comment": "a\x00b"}, "Comment contains a NUL character"),
    ("reject", {"comment": "a\x00b"}, "Comment contains a NUL character"),
    ("takeover", {"comment": "a\x00b"}, "Comment contains a NUL character"),
    ("comment", {"comment": "a\x00b"}, "Comment contains a NUL character"),
    ("reconcile", {"happened": "no", "comment": "a\x00b"}, "Comment contains a NUL character"),
    ("comment", {"comment": "x" * 10_001}, "Comment is longer than 10,000 characters"),
    ("approve", {"args": '{"user": "\\u0000"}'}, "Args contains a NUL character (at args.user)"),
    ("approve", {"args": '{"\\u0000": 1}'}, "Args has a key that contains a NUL character"),
    ("approve", {"args": '{"user": "\\ud800"}'}, "Args is not valid Unicode (a lone surrogate)"),
    ("approve", {"args": '{"n": NaN}'}, "Args is not a finite number (at args.n)"),
    ("approve", {"args": '{"a":' + "[" * 40 + "]" * 40 + "}"}, "Args nested deeper than 32"),
    ("approve", {"args": "[" * 100_000 + "]" * 100_000}, "Args is nested too deeply"),
]


@pytest.mark.parametrize(("action", "data", "shown"), HOSTILE_FIELDS)
def test_text_postgresql_cannot_store_is_a_form_error_and_changes_nothing(
    client, alice, packet_for, policy, action, data, shown
):
    from audit.models import AuditEvent

    policy(allow_edit=True)
    packet = packet_for()
    events = AuditEvent.objects.count()
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/{action}/", data)
    assert response.status_code == 400
    assert shown in response.content.decode()
    assert PausePacket.objects.get().status == "pending"
    assert AuditEvent.objects.count() == events
