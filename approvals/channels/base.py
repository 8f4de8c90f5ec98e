"""What a channel is: a way to reach a person or an orchestrator.

A channel is one module that subclasses Channel and registers an instance
(approvals.channel_registry); the outbox, the admin and the model's choices ask the registry, so
nothing else branches on a message's kind.
"""

from typing import TYPE_CHECKING

from django.utils.html import format_html

from audit.jsontext import visible

if TYPE_CHECKING:
    from datetime import datetime

    from approvals.models import OutboxMessage


class Channel:
    # The value stored in OutboxMessage.kind: never changes once messages exist.
    kind: str = ""
    label: str = ""
    # The decision record's event kind once a message of this channel is delivered.
    delivered_event: str = ""

    def send(self, message: "OutboxMessage") -> None:
        """Deliver one message; raise to have it retried (or given up on, see gives_up)."""
        raise NotImplementedError

    def gives_up(self, message: "OutboxMessage", now: "datetime") -> bool:
        """After a failed attempt: stop retrying this message."""
        raise NotImplementedError

    def copy_payload(self, message: "OutboxMessage", copy: "OutboxMessage") -> dict:
        """The payload of a new message that resends `message` (the admin's redeliver)."""
        return message.payload

    def subject(self, message: "OutboxMessage") -> str:
        """One line for the admin's list: what the message is about."""
        raise NotImplementedError

    def body_html(self, message: "OutboxMessage") -> str:
        """The message as the admin shows it, escaped."""
        return format_html('<pre class="gatekeeper-json">{}</pre>', visible(message.payload))
