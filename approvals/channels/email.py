"""Email to a person, through Django's mail backend; given up after EMAIL_MAX_ATTEMPTS."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils.html import format_html

from approvals import emails
from approvals.channel_registry import register
from approvals.channels.base import Channel
from approvals.events import EventKind
from audit.jsontext import visible

KIND = "email"
EMAIL_MAX_ATTEMPTS = 8


class EmailChannel(Channel):
    kind = KIND
    label = "Email"
    delivered_event = EventKind.NOTIFICATION_SENT

    def payload(self, topic: str, packet, user) -> dict:
        name = user.get_full_name() or user.get_username()
        return emails.compose(topic, packet, recipient_name=name)

    def send(self, message) -> None:
        email = EmailMultiAlternatives(
            subject=message.payload["subject"],
            body=message.payload["text"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"X-Gatekeeper-Message": str(message.id)},
        )
        email.attach_alternative(message.payload["html"], "text/html")
        email.send()

    def gives_up(self, message, now) -> bool:
        return message.attempts >= EMAIL_MAX_ATTEMPTS

    def subject(self, message) -> str:
        return visible(message.payload.get("subject", ""))

    def body_html(self, message) -> str:
        # Agent text reaches it: escaped here, never marked safe.
        return format_html(
            '<pre class="gatekeeper-json">{}</pre>', visible(message.payload.get("text", ""))
        )


EMAIL = register(EmailChannel())
