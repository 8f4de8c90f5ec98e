"""Composing reviewer email: plain text and HTML, one message per recipient.

Messages are composed when the change is written, so the outbox row holds exactly what will be
sent, whenever and however often delivery is tried.
"""

from django.conf import settings
from django.template.loader import render_to_string

from approvals.models import PausePacket

SUBJECTS = {
    "new_packet": "Approval needed: {tool} in {thread_id} (step {step})",
    "reminder": "Reminder: {tool} in {thread_id} expires soon",
    "escalation": "Escalated to you: {tool} in {thread_id}",
    "outcome": "Decided ({status}): {tool} in {thread_id}",
}


def compose(topic: str, packet: PausePacket, *, recipient_name: str) -> dict:
    """{subject, text, html} for one recipient."""
    context = {
        "packet": packet,
        "execution": packet.execution,
        "recipient_name": recipient_name,
        "url": f"{settings.GATEKEEPER_BASE_URL}{packet.get_absolute_url()}",
        "topic": topic,
    }
    subject = SUBJECTS[topic].format(
        tool=packet.tool,
        thread_id=packet.execution.thread_id,
        step=packet.step_index,
        status=packet.status,
    )
    return {
        # A header must hold no line break, whatever an agent put in its thread id or tool.
        "subject": " ".join(subject.split())[:200],
        "text": render_to_string("email/packet.txt", context),
        "html": render_to_string("email/packet.html", context),
    }
