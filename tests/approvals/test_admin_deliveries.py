"""The outbox in the admin: deliveries read-only, redelivered on request, and the users no
notification can reach found both there and in the user admin."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import tasks
from approvals.models import OutboxMessage
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create

LIST_URL = reverse("admin:approvals_outboxmessage_changelist")
USERS_URL = reverse("admin:auth_user_changelist")
MARKUP = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    """Message ids handed to the delivery task once the redeliver commits; no broker."""
    ids: list[str] = []
    monkeypatch.setattr(tasks.deliver_outbox_message, "delay", ids.append)
    return ids


@pytest.fixture
def hooked(db):
    """A service account with a callback URL: every change of its approvals is a webhook."""
    account, _token = service_account_create(
        name="hooked", callback_url="https://hooks.example.com/gk"
    )
    return account


def no_address(make_user, username: str) -> User:
    user = make_user(username, "reviewers")
    User.objects.filter(pk=user.pk).update(email="")
    return User.objects.get(pk=user.pk)


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def listed(client, **params) -> set[tuple[str, str, str]]:
    result = client.get(LIST_URL, params).context["cl"].result_list
    return {(m.kind, m.topic, m.username or m.recipient) for m in result}


def change_url(message: OutboxMessage) -> str:
    return reverse("admin:approvals_outboxmessage_change", args=[message.pk])


def redeliver(client, *messages: OutboxMessage):
    # The test's transaction never commits: run what the redeliver queues on commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            LIST_URL,
            {"action": "redeliver", "_selected_action": [str(m.pk) for m in messages]},
            follow=True,
        )


def test_the_deliveries_list_runs_the_same_number_of_queries_for_one_or_many(
    admin_client, packet_for, alice, bob, make_user, hooked, gate
):
    no_address(make_user, "nora")
    packet_for()
    one = queries_for(admin_client, LIST_URL)
    packet_for(execution__thread_id="run-2")
    packet_approve(
        packet_id=gate(account=hooked, execution__thread_id="hooked-1")["approval"]["id"],
        user=alice,
    )

    assert OutboxMessage.objects.filter(kind="webhook").exists()
    assert queries_for(admin_client, LIST_URL) == one


def test_the_list_shows_what_went_where_and_how_it_went(admin_client, packet_for, alice):
    packet_for()
    OutboxMessage.objects.filter(username="alice").update(
        status="pending", attempts=2, last_error="SMTPServerDisconnected: " + "x" * 200
    )

    response = admin_client.get(LIST_URL)
    content = response.content.decode()

    assert response.context["title"] == "Deliveries"
    headers = [column["text"] for column in response.context["result_headers"]]
    assert headers[1:] == [
        "kind",
        "topic",
        "recipient",
        "username",
        "status",
        "attempts",
        "next attempt at",
        "last error",
        "created at",
        "sent at",
    ]
    assert "alice@example.com" in content
    assert "SMTPServerDisconnected: xxx" in content
    assert "x" * 100 not in content  # the whole error is on the message's own page


def test_deliveries_filter_by_kind_status_and_topic_and_search_by_recipient_and_username(
    admin_client, packet_for, alice, bob, hooked, gate
):
    packet_for()
    packet_approve(
        packet_id=gate(account=hooked, execution__thread_id="hooked-1")["approval"]["id"],
        user=bob,
    )
    OutboxMessage.objects.filter(username="alice").update(status="failed")
    hook = ("webhook", "approval.decided", "https://hooks.example.com/gk")
    to_alice = ("email", "new_packet", "alice")
    to_bob = ("email", "new_packet", "bob")

    assert listed(admin_client, kind__exact="webhook") == {hook}
    assert listed(admin_client, topic="approval.decided") == {hook}
    assert listed(admin_client, status__exact="failed") == {to_alice}
    assert listed(admin_client, kind__exact="email", status__exact="pending") == {to_bob}
    assert listed(admin_client, q="alice@example") == {to_alice}
    assert listed(admin_client, q="hooks.example.com") == {hook}
    assert listed(admin_client, q="bob") == {to_bob}


def test_deliveries_cannot_be_added_changed_or_deleted(admin_client, packet_for, alice):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    delete = reverse("admin:approvals_outboxmessage_delete", args=[message.pk])

    assert admin_client.get(reverse("admin:approvals_outboxmessage_add")).status_code == 403
    assert admin_client.post(reverse("admin:approvals_outboxmessage_add"), {}).status_code == 403
    page = admin_client.get(change_url(message))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(change_url(message), {"status": "sent"}).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    actions = admin_client.get(LIST_URL).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["redeliver"]
    message.refresh_from_db()
    assert message.status == "pending"


def test_redeliver_queues_failed_and_sent_messages_again(
    admin_client, packet_for, alice, bob, queued
):
    packet_for()
    failed = OutboxMessage.objects.get(username="alice")
    sent = OutboxMessage.objects.get(username="bob")
    OutboxMessage.objects.filter(pk=failed.pk).update(
        status="failed", attempts=8, last_error="SMTPRecipientsRefused"
    )
    OutboxMessage.objects.filter(pk=sent.pk).update(status="sent")

    response = redeliver(admin_client, failed, sent)

    failed.refresh_from_db()
    sent.refresh_from_db()
    # A sent message goes out again under a new id: receivers drop a delivery id seen before.
    copy = OutboxMessage.objects.exclude(pk=sent.pk).get(username="bob", topic="new_packet")
    assert (failed.status, sent.status, copy.status) == ("pending", "sent", "pending")
    assert copy.payload == sent.payload and copy.recipient == sent.recipient
    assert sorted(queued) == sorted([str(failed.pk), str(copy.pk)])
    notes = [str(m) for m in response.context["messages"]]
    assert notes == ["2 messages queued for delivery again."]


def test_a_redelivered_webhook_signs_its_new_delivery_id_in_its_body(
    admin_client, alice, hooked, gate, queued
):
    packet_approve(
        packet_id=gate(account=hooked, execution__thread_id="hooked-1")["approval"]["id"],
        user=alice,
    )
    sent = OutboxMessage.objects.get(kind="webhook")
    OutboxMessage.objects.filter(pk=sent.pk).update(status="sent")

    redeliver(admin_client, sent)

    copy = OutboxMessage.objects.exclude(pk=sent.pk).get(kind="webhook")
    original, resent = json.loads(sent.payload["body"]), json.loads(copy.payload["body"])
    assert (original["id"], resent["id"]) == (str(sent.pk), str(copy.pk))
    assert {**resent, "id": None} == {**original, "id": None}
    assert copy.payload["event"] == sent.payload["event"] == "approval.decided"


def test_redeliver_leaves_pending_and_undeliverable_messages_alone(
    admin_client, packet_for, alice, make_user, queued
):
    no_address(make_user, "nora")
    packet_for()
    pending = OutboxMessage.objects.get(username="alice")
    undeliverable = OutboxMessage.objects.get(username="nora")

    response = redeliver(admin_client, pending, undeliverable)

    assert queued == []
    assert OutboxMessage.objects.get(pk=undeliverable.pk).status == "undeliverable"
    notes = [str(m) for m in response.context["messages"]]
    assert notes[0] == "0 messages queued for delivery again."
    assert notes[1].startswith("2 left as they are: only failed or sent messages are redelivered")


def test_staff_who_may_only_view_deliveries_cannot_redeliver(
    client, packet_for, alice, make_user, queued
):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed")
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxmessage"))
    client.force_login(viewer)

    assert client.get(LIST_URL).context["action_form"] is None
    redeliver(client, message)

    assert queued == []
    assert OutboxMessage.objects.get(pk=message.pk).status == "failed"


def test_staff_with_the_change_permission_may_redeliver(
    client, packet_for, alice, make_user, queued
):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed")
    operator = make_user("otto", is_staff=True)
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_outboxmessage", "change_outboxmessage"])
    )
    client.force_login(operator)

    redeliver(client, message)

    assert queued == [str(message.pk)]
    assert client.post(change_url(message), {}).status_code == 403


def test_undeliverable_messages_name_the_user_and_the_reason(
    admin_client, packet_for, alice, make_user
):
    no_address(make_user, "nora")
    packet_for()

    everything = admin_client.get(LIST_URL).content.decode()
    rows = admin_client.get(LIST_URL, {"status__exact": "undeliverable"})

    assert "1 notification could not be sent because the user has no email address" in everything
    assert "?status__exact=undeliverable" in everything
    assert f"{USERS_URL}?has_email=no" in everything
    (message,) = rows.context["cl"].result_list
    assert (message.username, message.recipient) == ("nora", "")
    assert "the user has no email address" in rows.content.decode()


def test_no_banner_when_every_user_has_an_address(admin_client, packet_for, alice):
    packet_for()

    assert "no email address" not in admin_client.get(LIST_URL).content.decode()


def test_the_user_admin_finds_users_without_an_email_address(admin_client, alice, make_user):
    no_address(make_user, "nora")

    def users(**params) -> set[str]:
        response = admin_client.get(USERS_URL, params)
        return {user.username for user in response.context["cl"].result_list}

    assert users(has_email="no") == {"nora"}
    assert users(has_email="yes") == {"alice", "admin"}
    assert users(has_email="no", q="nora") == {"nora"}
    response = admin_client.get(USERS_URL)
    headers = [column["text"] for column in response.context["result_headers"]]
    assert headers[-1] == "has email"
    # Everything else of Django's user admin stays.
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert titles == ["staff status", "superuser status", "active", "groups", "has email"]
    assert admin_client.get(reverse("admin:auth_user_change", args=[alice.pk])).status_code == 200


def test_the_delivery_page_escapes_agent_text_in_email_and_webhook(
    admin_client, alice, hooked, gate
):
    response = gate(account=hooked, step__name=f"grant {MARKUP}", action__args={"note": MARKUP})
    packet_approve(packet_id=response["approval"]["id"], user=alice)
    email = OutboxMessage.objects.get(kind="email", username="alice")
    webhook = OutboxMessage.objects.get(kind="webhook")

    email_page = admin_client.get(change_url(email)).content.decode()
    webhook_page = admin_client.get(change_url(webhook)).content.decode()

    for page in (email_page, webhook_page):
        assert "<img src=x" not in page
        assert ESCAPED in page
    assert "Approval needed: &quot;iam.grant&quot;" in email_page  # agent text, quoted
    assert "approval.decided" in webhook_page
    assert "&quot;note&quot;: &quot;" + ESCAPED in webhook_page  # the body, pretty printed
