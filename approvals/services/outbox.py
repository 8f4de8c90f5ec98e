"""The transactional outbox: side effects written with the change, delivered after commit.

Enqueue functions run inside the business transaction and queue a Celery task on commit (a
rollback leaves no row and queues nothing). Delivery claims a row with a conditional UPDATE and
goes on only when exactly one row changed, so a redelivered task, a re-drive and a second worker
never send the same message at once; a lease lets a killed worker's claim lapse.
"""

import random
from collections.abc import Iterable
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from approvals import webhooks
from approvals.channel_registry import channel_for
from approvals.channels import email, webhook
from approvals.events import EventKind
from approvals.models import OutboxMessage, PausePacket
from approvals.permissions import users_who_may_resume
from approvals.serializers import approval_json
from audit.services import Event, record_events

Status = OutboxMessage.Status
DECIDED_STATUSES = ("approved", "rejected", "expired", "terminated", "applied")
DELIVER_TASK = "approvals.tasks.deliver_outbox_message"


def _lease() -> timedelta:
    return timedelta(seconds=settings.GATEKEEPER_OUTBOX_LEASE_SECONDS)


def _queue_on_commit(messages: list[OutboxMessage]) -> None:
    ids = [str(message.id) for message in messages if message.status == Status.PENDING]
    if ids:
        # robust: a broker that is down must not fail the decision already committed; the
        # periodic re-drive delivers what could not be queued.
        transaction.on_commit(lambda: _queue(ids), robust=True)


def _queue(ids: list[str]) -> None:
    # By name: approvals.tasks imports this module, and this one must not import it back.
    deliver = current_app.tasks[DELIVER_TASK]
    for message_id in ids:
        deliver.delay(message_id)


def enqueue(messages: list[OutboxMessage]) -> None:
    """Write messages made in the caller's transaction; they are sent once it commits."""
    OutboxMessage.objects.bulk_create(messages)
    _queue_on_commit(messages)


def _email(topic: str, packet: PausePacket, user, now) -> OutboxMessage:
    if not user.email:
        return OutboxMessage(
            kind=email.KIND,
            topic=topic,
            packet=packet,
            recipient="",
            username=user.get_username(),
            status=Status.UNDELIVERABLE,
            next_attempt_at=now,
            last_error="the user has no email address",
        )
    return OutboxMessage(
        kind=email.KIND,
        topic=topic,
        packet=packet,
        recipient=user.email,
        username=user.get_username(),
        payload=email.EMAIL.payload(topic, packet, user),
        next_attempt_at=now,
    )


def enqueue_emails(topic: str, packet: PausePacket, users: Iterable, *, actor: str) -> list:
    """One message per recipient (never a shared list), recorded as notification.queued."""
    now = timezone.now()
    messages = OutboxMessage.objects.bulk_create(
        [_email(topic, packet, user, now) for user in users]
    )
    if messages:
        record_events(
            [
                Event(
                    EventKind.NOTIFICATION_QUEUED,
                    actor=actor,
                    execution_id=packet.execution_id,
                    packet_id=packet.id,
                    data={
                        "topic": topic,
                        "to": [m.username for m in messages if m.status == Status.PENDING],
                        "no_address": [m.username for m in messages if m.status != Status.PENDING],
                    },
                )
            ]
        )
    _queue_on_commit(messages)
    return messages


def outbox_packet_opened(packet: PausePacket, *, actor: str) -> None:
    """Tell everyone who may decide a new packet."""
    enqueue_emails("new_packet", packet, users_who_may_resume(packet), actor=actor)


def webhook_message(event: str, content: dict, *, recipient: str, **fields) -> OutboxMessage:
    """An unsaved webhook to `recipient` whose signed body carries its own delivery id."""
    message = OutboxMessage(
        kind=webhook.KIND,
        topic=event,
        recipient=recipient,
        next_attempt_at=timezone.now(),
        **fields,
    )
    message.payload = webhook.WEBHOOK.payload(message.id, event, content)
    return message


def outbox_packets_changed(packets: list[PausePacket]) -> None:
    """Webhooks for every change, and the outcome email to the requester once decided."""
    messages = []
    for packet in packets:
        account = packet.requested_by
        if account.callback_url:
            event = "approval.decided" if packet.status in DECIDED_STATUSES else "approval.updated"
            messages.append(
                webhook_message(
                    event,
                    {"approval": approval_json(packet)},
                    recipient=account.callback_url,
                    packet=packet,
                    service_account=account,
                )
            )
    enqueue(messages)
    for packet in packets:
        requester = _requester(packet)
        if packet.status in DECIDED_STATUSES and requester is not None:
            enqueue_emails("outcome", packet, [requester], actor="system")


def _requester(packet: PausePacket):
    from django.contrib.auth import get_user_model

    if not packet.on_behalf_of:
        return None
    return get_user_model().objects.filter(username=packet.on_behalf_of, is_active=True).first()


def _claim(message_id) -> bool:
    """Take the message for one delivery attempt; False when someone else holds it or it is done."""
    now = timezone.now()
    return (
        OutboxMessage.objects.filter(id=message_id)
        .filter(
            Q(status=Status.PENDING, next_attempt_at__lte=now)
            | Q(status=Status.SENDING, lease_until__lt=now)
        )
        .update(status=Status.SENDING, attempts=F("attempts") + 1, lease_until=now + _lease())
        == 1
    )


def deliver(message_id) -> str:
    """Deliver one outbox message if it is due and unclaimed; returns what happened."""
    if not _claim(message_id):
        return "not due or taken"
    message = OutboxMessage.objects.select_related("service_account").get(id=message_id)
    try:
        channel_for(message.kind).send(message)
    except Exception as error:  # noqa: BLE001 - any failure is retried, then given up on
        return _failed(message, error)
    with transaction.atomic():
        done = OutboxMessage.objects.filter(id=message.id, status=Status.SENDING).update(
            status=Status.SENT, sent_at=timezone.now(), lease_until=None, last_error=""
        )
        if done:
            kind = channel_for(message.kind).delivered_event
            packet = PausePacket.objects.filter(id=message.packet_id).values("execution_id").first()
            record_events(
                [
                    Event(
                        kind,
                        actor="system",
                        packet_id=message.packet_id,
                        execution_id=packet["execution_id"] if packet else None,
                        data={
                            "message": str(message.id),
                            "topic": message.topic,
                            "to": message.username or message.recipient,
                            "attempts": message.attempts,
                        },
                    )
                ]
            )
    return "sent"


def backoff(attempts: int) -> timedelta:
    """Exponential, with jitter so that retries after an outage do not arrive together."""
    base = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=base * random.uniform(0.5, 1.5))  # noqa: S311 - not for security


def _failed(message: OutboxMessage, error: Exception) -> str:
    now = timezone.now()
    give_up = channel_for(message.kind).gives_up(message, now)
    OutboxMessage.objects.filter(id=message.id, status=Status.SENDING).update(
        status=Status.FAILED if give_up else Status.PENDING,
        next_attempt_at=now + backoff(message.attempts),
        lease_until=None,
        last_error=_error_text(error)[:2000],
    )
    return "gave up" if give_up else "will retry"


def _error_text(error: Exception) -> str:
    if isinstance(error, webhooks.DeliveryFailed):
        return str(error)  # written by us, quoting nothing the receiver sent
    return f"{type(error).__name__}: {error}"


def due_message_ids(*, limit: int = 1000) -> list:
    """What a re-drive should try now: due retries, and claims whose worker died."""
    now = timezone.now()
    return list(
        OutboxMessage.objects.filter(
            Q(status=Status.PENDING, next_attempt_at__lte=now)
            | Q(status=Status.SENDING, lease_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def redeliver(message_ids: Iterable) -> int:
    """Admin's redeliver: each failed or sent message goes out once more, as soon as possible.

    A failed message is retried as it is. A sent one goes out as a new message with a new id:
    receivers reject a delivery id they have already seen, so resending it would be ignored.
    """
    now = timezone.now()
    ids = list(message_ids)
    with transaction.atomic():
        retried = list(
            OutboxMessage.objects.select_for_update()
            .filter(id__in=ids, status=Status.FAILED)
            .values_list("id", flat=True)
        )
        OutboxMessage.objects.filter(id__in=retried).update(
            status=Status.PENDING, next_attempt_at=now, lease_until=None
        )
        copies = OutboxMessage.objects.bulk_create(
            [_copy(m, now) for m in OutboxMessage.objects.filter(id__in=ids, status=Status.SENT)]
        )
        queued = [str(message_id) for message_id in retried] + [str(m.id) for m in copies]
        if queued:
            transaction.on_commit(lambda: _queue(queued), robust=True)
    return len(queued)


def _copy(message: OutboxMessage, now) -> OutboxMessage:
    copy = OutboxMessage(
        kind=message.kind,
        topic=message.topic,
        packet_id=message.packet_id,
        service_account_id=message.service_account_id,
        recipient=message.recipient,
        username=message.username,
        payload=message.payload,
        next_attempt_at=now,
    )
    copy.payload = channel_for(copy.kind).copy_payload(message, copy)
    return copy
