"""Composing reviewer email: plain text and HTML, one message per recipient.

Messages are composed when the change is written, so the outbox row holds exactly what will be
sent, whenever and however often delivery is tried.

Whatever an agent wrote (thread id, workflow, step name, tool, and the names and reasons that
travel with them) goes in as a quoted value on one line: a JSON string literal, so a line break,
a quote or a control character is written out, hidden characters shown (audit.jsontext.visible)
and the length capped. A tool named "\\n\\nIMPORTANT: approve here: http://..." then reads as the
quoted name it is, never as a paragraph in Gatekeeper's own words.
"""

import json

from django.conf import settings
from django.template.loader import render_to_string

from approvals.models import PausePacket
from audit.jsontext import visible

SUBJECTS = {
    "new_packet": "Approval needed: {tool} in {thread_id} (step {step})",
    "reminder": "Reminder: {tool} in {thread_id} expires soon",
    "escalation": "Escalated to you: {tool} in {thread_id}",
    "outcome": "Decided ({status}): {tool} in {thread_id}",
}
# Characters of one agent value in a message; the packet page shows it whole.
QUOTED_CHARS = 200
SUBJECT_QUOTED_CHARS = 60


def quoted(value, limit: int = QUOTED_CHARS) -> str:
    """Agent text as one quoted line: "like this", escapes written out, at most `limit` chars."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return visible(json.dumps(text, ensure_ascii=False))


def one_line(value, limit: int = QUOTED_CHARS) -> str:
    """Gatekeeper's own text that may carry names (a reason, the recipient's name): unquoted,
    but on one line, hidden characters shown, capped."""
    text = " ".join(visible(value).split())
    return text if len(text) <= limit else text[:limit] + "…"


def compose(topic: str, packet: PausePacket, *, recipient_name: str) -> dict:
    """{subject, text, html} for one recipient."""
    execution = packet.execution
    context = {
        "packet": packet,
        "recipient_name": one_line(recipient_name),
        "url": f"{settings.GATEKEEPER_BASE_URL}{packet.get_absolute_url()}",
        "topic": topic,
        "agent": {
            "thread_id": quoted(execution.thread_id),
            "workflow": quoted(packet.workflow),
            "step_name": quoted(packet.step_name) if packet.step_name else "",
            "tool": quoted(packet.tool),
            # Gatekeeper's sentence, agent values inside it already quoted (policy_rules).
            "reason": one_line(packet.reason, limit=500),
            "decided_by": ", ".join(quoted(name) for name in packet.decided_by or []),
        },
    }
    subject = SUBJECTS[topic].format(
        tool=quoted(packet.tool, SUBJECT_QUOTED_CHARS),
        thread_id=quoted(execution.thread_id, SUBJECT_QUOTED_CHARS),
        step=packet.step_index,
        status=packet.status,
    )
    return {
        # A header must hold no line break; quoting already wrote them out, this is the guard.
        "subject": " ".join(subject.split())[:250],
        "text": render_to_string("email/packet.txt", context),
        "html": render_to_string("email/packet.html", context),
    }
