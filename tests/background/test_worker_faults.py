"""Background work survives faults: a real Celery worker on Redis, a real SMTP server, a real
webhook receiver, and the faults done for real (a rollback, SIGKILL, a broker that refuses).
"""

import logging
import time

import pytest
from django.db import transaction

from approvals.channels import email
from approvals.channels import webhook as webhook_channel
from approvals.models import OutboxMessage, PausePacket
from approvals.services import outbox
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from approvals.tasks import redrive_outbox
from audit.models import AuditEvent
from tests.background.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Generous for a loaded machine; each wait ends as soon as its event happens.
DELIVERY_TIMEOUT = 20


@pytest.fixture
def hooked_agent(webhook_receiver):
    """A service account whose callback URL is the test's webhook receiver."""
    account, _token = service_account_create(name="hooked", callback_url=webhook_receiver.url)
    webhook_receiver.secret = account.webhook_secret
    return account


@pytest.fixture
def worker(start_worker, publish_to, redis_broker):
    publish_to(redis_broker)
    return start_worker("w1")


def _all_sent() -> bool:
    return not OutboxMessage.objects.exclude(status=OutboxMessage.Status.SENT).exists()


def test_a_new_packet_is_emailed_and_its_decision_posted_once_committed(
    worker, smtp_sink, webhook_receiver, hooked_agent, packet_for, alice, bob
):
    packet = packet_for(account=hooked_agent, execution__thread_id="committed-1")

    mail = smtp_sink.wait_for(lambda m: len(m) >= 2, DELIVERY_TIMEOUT, "two emails")
    assert sorted(m["to"][0] for m in mail) == ["alice@example.com", "bob@example.com"]
    assert all(len(m["to"]) == 1 for m in mail)  # one message each, never a shared list
    assert all(
        "committed-1" in m["subject"] and f"/approvals/{packet.id}/" in m["text"] for m in mail
    )
    emailed = OutboxMessage.objects.filter(kind=email.KIND)
    assert {m["message_id"] for m in mail} == {str(m.id) for m in emailed}

    packet_approve(packet_id=packet.id, user=alice)

    (hook,) = webhook_receiver.wait_for(lambda h: h, DELIVERY_TIMEOUT, "the webhook")
    webhook = OutboxMessage.objects.get(kind=webhook_channel.KIND)
    assert hook["event"] == "approval.decided" and hook["delivery"] == str(webhook.id)
    assert hook["body"]["approval"]["id"] == str(packet.id)
    assert hook["body"]["approval"]["status"] == "approved"
    wait_until(_all_sent, timeout=DELIVERY_TIMEOUT, what="every outbox row to be sent")
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    assert AuditEvent.objects.filter(kind="webhook.delivered").count() == 1
    assert AuditEvent.objects.filter(kind="notification.sent").count() == 2
    assert webhook_receiver.duplicates.items == [] and webhook_receiver.refused.items == []


def test_a_change_that_rolls_back_queues_and_delivers_nothing(worker, smtp_sink, packet_for, alice):
    with pytest.raises(RuntimeError), transaction.atomic():
        packet_for(execution__thread_id="rolled-back")
        raise RuntimeError("the business transaction fails after the packet was written")
    assert not OutboxMessage.objects.exists() and not PausePacket.objects.exists()

    # One worker takes tasks in order: once a later, committed change's email has arrived,
    # anything the rolled-back one had queued would have arrived before it.
    packet_for(execution__thread_id="committed-after")
    smtp_sink.wait_for(lambda m: m, DELIVERY_TIMEOUT, "the committed packet's email")
    assert [m["subject"] for m in smtp_sink.items] == [
        'Approval needed: "iam.grant" in "committed-after" (step 3)'
    ]


def test_a_worker_killed_mid_delivery_is_redriven_and_the_receiver_processes_it_once(
    start_worker,
    publish_to,
    redis_broker,
    smtp_sink,
    webhook_receiver,
    hooked_agent,
    packet_for,
    alice,
):
    publish_to(redis_broker)
    first = start_worker("w1")
    packet = packet_for(account=hooked_agent)
    smtp_sink.wait_for(lambda m: m, DELIVERY_TIMEOUT, "the new-packet email")

    webhook_receiver.hang_first = True
    packet_approve(packet_id=packet.id, user=alice)
    assert webhook_receiver.hanging.wait(DELIVERY_TIMEOUT), "the worker never posted the webhook"
    first.kill()  # SIGKILL while the POST waits for its answer
    webhook_receiver.release.set()

    webhook = OutboxMessage.objects.get(kind=webhook_channel.KIND)
    assert (webhook.status, webhook.attempts) == ("sending", 1)
    assert [h["delivery"] for h in webhook_receiver.items] == [str(webhook.id)]

    start_worker("w2")
    wait_until(
        lambda: webhook.id in outbox.due_message_ids(),
        timeout=DELIVERY_TIMEOUT,
        what="the dead worker's lease to lapse",
    )
    redrive_outbox.delay()  # what beat runs every 30 s
    wait_until(_all_sent, timeout=DELIVERY_TIMEOUT, what="the webhook to be re-sent")

    webhook.refresh_from_db()
    assert webhook.status == "sent" and webhook.attempts >= 2
    # At least once on the wire, exactly once in effect: the repeat carried the same id.
    assert [h["delivery"] for h in webhook_receiver.items] == [str(webhook.id)]
    assert [h["delivery"] for h in webhook_receiver.duplicates.items] == [str(webhook.id)]
    assert AuditEvent.objects.filter(kind="webhook.delivered").count() == 1


def test_a_decision_made_while_the_broker_is_down_is_delivered_when_it_returns(
    start_worker,
    publish_to,
    redis_broker,
    refused_broker_url,
    smtp_sink,
    webhook_receiver,
    hooked_agent,
    packet_for,
    alice,
    caplog,
):
    start_worker("w1")  # on the real Redis, idle
    publish_to(refused_broker_url)
    with caplog.at_level(logging.ERROR):
        started = time.monotonic()
        packet = packet_for(account=hooked_agent)
        gated = time.monotonic()
        packet_approve(packet_id=packet.id, user=alice)
        decided = time.monotonic()
    # Each commit happened before its publish was tried; a failed publish costs one connection
    # attempt, not a retry loop (a generous bound: speed is bench/'s business).
    for step, seconds in (("gate check", gated - started), ("decision", decided - gated)):
        assert seconds < 15, f"the {step} took {seconds:.1f} s with the broker down"
    assert PausePacket.objects.get(id=packet.id).status == "approved"
    refused = [r for r in caplog.records if "on_commit" in r.getMessage()]
    assert refused and all("Connection refused" in r.getMessage() for r in refused)
    assert sorted(OutboxMessage.objects.values_list("kind", "status")) == [
        ("email", "pending"),
        ("webhook", "pending"),
    ]
    assert smtp_sink.items == [] and webhook_receiver.items == []

    publish_to(redis_broker)  # the broker is back
    redrive_outbox.delay()  # beat's next re-drive
    wait_until(_all_sent, timeout=DELIVERY_TIMEOUT, what="the outbox to drain")
    (hook,) = webhook_receiver.items
    assert hook["body"]["approval"]["status"] == "approved"
    assert [m["to"] for m in smtp_sink.items] == [["alice@example.com"]]
    assert webhook_receiver.duplicates.items == []
