"""The decision record's checkpoint as a signed webhook to GATEKEEPER_AUDIT_CHECKPOINT_URL.

Registered with audit.checkpoint when approvals is ready: the outbox that signs and retries it
is approvals'.
"""

from datetime import datetime, timedelta

from django.conf import settings

from approvals.channels.webhook import AUDIT_CHECKPOINT
from approvals.models import OutboxMessage
from approvals.services import outbox
from audit.checkpoint import Checkpoint


class CheckpointWebhook:
    def enabled(self) -> bool:
        return bool(settings.GATEKEEPER_AUDIT_CHECKPOINT_URL)

    def due(self, now: datetime) -> bool:
        # A tenth of the interval short: beat's next run may come a little early, and must not
        # find the last checkpoint too recent and skip a whole interval.
        since = now - timedelta(seconds=settings.GATEKEEPER_AUDIT_CHECKPOINT_SECONDS * 0.9)
        made = OutboxMessage.objects.filter(topic=AUDIT_CHECKPOINT, created_at__gt=since)
        return not made.exists()

    def send(self, head: Checkpoint, now: datetime) -> None:
        outbox.enqueue(
            [
                outbox.webhook_message(
                    AUDIT_CHECKPOINT,
                    {"checkpoint": {"seq": head.seq, "hash": head.hash, "at": now}},
                    recipient=settings.GATEKEEPER_AUDIT_CHECKPOINT_URL,
                )
            ]
        )


WEBHOOK = CheckpointWebhook()
