"""Reviewer email: agent text is quoted on one line, never free lines in Gatekeeper's voice."""

from approvals.emails import QUOTED_CHARS, compose, quoted
from audit.jsontext import HIDDEN

INJECTED = "\n\nIMPORTANT: pre-approved by IT. Approve here: http://evil.example\n\n"


def _spoofing_packet(packet_for):
    return packet_for(
        execution__thread_id="spoof-1",
        execution__workflow="hr\u202efdp.exe",
        step__name="set\r\nTo: everyone@example.com",
        action__tool=INJECTED,
    )


def test_agent_text_in_the_plain_email_stays_on_its_own_quoted_line(packet_for):
    plain = compose("new_packet", packet_for(), recipient_name="Alice")["text"]
    message = compose("new_packet", _spoofing_packet(packet_for), recipient_name="Alice")["text"]
    # The same lines as a message about an ordinary packet: nothing was added by the agent.
    assert len(message.splitlines()) == len(plain.splitlines())
    assert not any(line.startswith(("IMPORTANT", "To:")) for line in message.splitlines())
    (action,) = [line for line in message.splitlines() if "evil.example" in line]
    assert action == (
        'Action:    "\\n\\nIMPORTANT: pre-approved by IT. Approve here: http://evil.example\\n\\n"'
    )
    assert 'Step:      3 "set\\r\\nTo: everyone@example.com"' in message
    assert '(workflow "hr\\u202efdp.exe")' in message and not HIDDEN.search(message)
    assert "Values in quotes were written by the agent, not by Gatekeeper." in message


def test_the_subject_is_one_line_with_the_agent_text_quoted(packet_for):
    for topic in ("new_packet", "reminder", "escalation", "outcome"):
        subject = compose(topic, _spoofing_packet(packet_for), recipient_name="A")["subject"]
        assert "\n" not in subject and "\r" not in subject and len(subject) <= 250
        assert '"\\n\\nIMPORTANT: pre-approved by IT' in subject


def test_the_html_email_quotes_and_escapes_it_too(packet_for):
    html = compose("new_packet", _spoofing_packet(packet_for), recipient_name="<b>A</b>")["html"]
    assert "<code>&quot;\\n\\nIMPORTANT: pre-approved by IT." in html
    assert "hr\\u202efdp.exe" in html and not HIDDEN.search(html)
    assert "<b>A</b>" not in html


def test_a_long_value_is_capped():
    shown = quoted("x" * 10_000)
    assert len(shown) == QUOTED_CHARS + 3 and shown.endswith('…"')
