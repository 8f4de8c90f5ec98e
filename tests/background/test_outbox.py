"""The outbox: written with the change, delivered once, retried, given up on."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from approvals.channels import email
from approvals.models import OutboxMessage
from approvals.services import outbox
from approvals.services.review import packet_approve
from audit.models import AuditEvent


def test_a_new_packet_emails_each_reviewer_separately(packet_for, alice, bob, make_user):
    make_user("noemail", "reviewers").__class__.objects.filter(username="noemail").update(email="")
    packet = packet_for()
    messages = OutboxMessage.objects.filter(packet=packet, topic="new_packet")
    assert sorted(m.recipient for m in messages if m.status == "pending") == [
        "alice@example.com",
        "bob@example.com",
    ]
    undeliverable = messages.get(username="noemail")
    assert undeliverable.status == "undeliverable" and "no email" in undeliverable.last_error
    queued = AuditEvent.objects.get(kind="notification.queued")
    assert queued.data["to"] == ["alice", "bob"] and queued.data["no_address"] == ["noemail"]


def test_delivery_sends_one_message_per_recipient_with_a_link(packet_for, alice, bob, settings):
    settings.GATEKEEPER_BASE_URL = "https://gk.example.com"
    packet = packet_for()
    for message in OutboxMessage.objects.filter(status="pending"):
        assert outbox.deliver(message.id) == "sent"
    assert len(mail.outbox) == 2
    assert all(len(m.to) == 1 and not m.bcc for m in mail.outbox)
    assert f"https://gk.example.com/approvals/{packet.id}/" in mail.outbox[0].body
    assert mail.outbox[0].alternatives[0].mimetype == "text/html"
    assert AuditEvent.objects.filter(kind="notification.sent").count() == 2


def test_a_delivered_message_is_never_sent_again(packet_for, alice):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    assert outbox.deliver(message.id) == "sent"
    assert outbox.deliver(message.id) == "not due or taken"
    assert len(mail.outbox) == 1


def test_a_claimed_message_is_not_sent_by_a_second_worker(packet_for, alice):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    assert outbox._claim(message.id)
    assert outbox.deliver(message.id) == "not due or taken"
    assert mail.outbox == []


def test_a_lapsed_claim_is_delivered_by_the_redrive(packet_for, alice):
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    assert outbox._claim(message.id)  # a worker took it, then died
    OutboxMessage.objects.filter(id=message.id).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.due_message_ids() == [message.id]
    assert outbox.deliver(message.id) == "sent"
    assert OutboxMessage.objects.get(id=message.id).attempts == 2


def test_a_failed_delivery_backs_off_and_finally_gives_up(packet_for, alice, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.background.failing_mail.FailingBackend"}}
    packet_for()
    message = OutboxMessage.objects.get(username="alice")
    assert outbox.deliver(message.id) == "will retry"
    retried = OutboxMessage.objects.get(id=message.id)
    assert retried.status == "pending" and "refused" in retried.last_error
    assert retried.next_attempt_at > timezone.now() + timedelta(seconds=10)
    OutboxMessage.objects.filter(id=message.id).update(
        attempts=email.EMAIL_MAX_ATTEMPTS - 1, next_attempt_at=timezone.now()
    )
    assert outbox.deliver(message.id) == "gave up"
    assert OutboxMessage.objects.get(id=message.id).status == "failed"


def test_backoff_grows_and_is_jittered():
    assert timedelta(seconds=15) <= outbox.backoff(1) <= timedelta(seconds=45)
    assert outbox.backoff(6) > outbox.backoff(1)
    assert outbox.backoff(50) <= timedelta(seconds=5400)


def test_the_requester_hears_the_outcome(packet_for, alice, make_user):
    make_user("dana")
    packet = packet_for(execution__on_behalf_of="dana")
    packet_approve(packet_id=packet.id, user=alice)
    outcome = OutboxMessage.objects.get(topic="outcome")
    assert outcome.recipient == "dana@example.com" and "approved" in outcome.payload["subject"]


def test_sweep_twice_changes_nothing_the_second_time(packet_for, alice):
    packet = packet_for()
    packet.__class__.objects.filter(id=packet.id).update(
        created_at=timezone.now() - timedelta(days=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    call_command("sweep", stdout=(first := __import__("io").StringIO()))
    events = AuditEvent.objects.count()
    messages = OutboxMessage.objects.count()
    call_command("sweep", stdout=(second := __import__("io").StringIO()))
    assert "expired=1" in first.getvalue()
    assert second.getvalue().startswith("expired=0 reminded=0 delivered=0")
    assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (events, messages)


@pytest.mark.django_db(transaction=True)
def test_nothing_is_written_or_queued_when_the_change_rolls_back(packet_for, alice):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        packet_for()
        raise RuntimeError("the business transaction fails")
    assert not OutboxMessage.objects.exists()
