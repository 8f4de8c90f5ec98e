"""A signed POST to an orchestrator's callback URL (or the audit checkpoint's receiver); given up
on WEBHOOK_GIVE_UP_AFTER after it was queued."""

import json
from datetime import timedelta

from django.conf import settings
from django.utils.html import format_html

from approvals import webhooks
from approvals.channel_registry import register
from approvals.channels.base import Channel
from approvals.events import EventKind
from audit.jsontext import pretty_json, visible

KIND = "webhook"
WEBHOOK_GIVE_UP_AFTER = timedelta(hours=24)
# The decision record's checkpoint (audit.checkpoint), signed with its own secret.
AUDIT_CHECKPOINT = "audit.checkpoint"


class WebhookChannel(Channel):
    kind = KIND
    label = "Webhook"
    delivered_event = EventKind.WEBHOOK_DELIVERED

    def payload(self, message_id, event: str, content: dict) -> dict:
        return {"event": event, "body": webhooks.webhook_body(message_id, event, content)}

    def send(self, message) -> None:
        body = message.payload["body"]
        if json.loads(body).get("id") != str(message.id):
            # Queued before bodies carried their delivery id: it goes out signed with it anyway.
            body = webhooks.rebodied(body, message.id)
        webhooks.post(
            message.recipient,
            event=message.payload["event"],
            delivery_id=str(message.id),
            body=body,
            secret=_secret(message),
        )

    def gives_up(self, message, now) -> bool:
        return now - message.created_at > WEBHOOK_GIVE_UP_AFTER

    def copy_payload(self, message, copy) -> dict:
        # The signed body names its delivery: the copy's is its own.
        return {**message.payload, "body": webhooks.rebodied(message.payload["body"], copy.id)}

    def subject(self, message) -> str:
        return visible(message.payload.get("event", ""))

    def body_html(self, message) -> str:
        body = message.payload.get("body", "")
        try:
            return pretty_json(json.loads(body))
        except (TypeError, ValueError):
            return format_html('<pre class="gatekeeper-json">{}</pre>', visible(body))


def _secret(message) -> str:
    if message.topic == AUDIT_CHECKPOINT:
        # Kept in the environment, not in a row that whoever can write the database could read.
        return settings.GATEKEEPER_AUDIT_CHECKPOINT_SECRET or ""
    return message.service_account.webhook_secret


WEBHOOK = register(WebhookChannel())
