"""Bidi, zero-width and control characters in agent text are shown, escaped, on every page.

`invoice\\u202efdp.exe` would read "invoiceexe.pdf": every page that shows agent text shows the
override as the visible `\\u202e` instead, never the raw character, and the text stays escaped.
"""

import json
import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from approvals.services.review import packet_comment, packet_reject
from audit.jsontext import HIDDEN, pretty_json, visible

SPOOF = "invoice\u202efdp.exe"
HIDDEN_ONES = "\x01\x1b\x7f\x85\u061c\u200b\u200e\u200f\u2028\u202a\u202e\u2060\u2066\u2069\ufeff"


def test_visible_writes_out_each_hidden_character_and_leaves_the_rest():
    assert visible(SPOOF) == "invoice\\u202efdp.exe"
    assert visible("é ✓ 日本\n\t<b>") == "é ✓ 日本\n\t<b>"
    shown = visible(HIDDEN_ONES)
    assert not HIDDEN.search(shown)
    assert shown.count("\\u") == len(HIDDEN_ONES)


def test_pretty_json_escapes_them_and_still_parses_back_to_the_same_value():
    value = {"file": SPOOF, f"key{HIDDEN_ONES}": [HIDDEN_ONES, "<script>"]}
    text = pretty_json(value)
    assert not HIDDEN.search(text) and "\\u202e" in text
    assert json.loads(text) == value


@pytest.fixture
def spoofed(packet_for, alice, bob):
    """A packet whose agent text hides characters everywhere an agent may put text."""
    packet = packet_for(
        execution__workflow=f"wf{SPOOF}",
        step__name=f"step{HIDDEN_ONES}",
        action__tool=SPOOF,
        action__args={"file": SPOOF, "k\u2066": "x\x85y"},
        context=[
            {"name": f"ctx{SPOOF}", "value": {"v": SPOOF}, "observed_at": "2026-11-22T09:00:00Z"}
        ],
    )
    packet_comment(packet_id=packet.id, user=alice, comment=f"see {SPOOF}")
    other = packet_for(execution__thread_id="decided-1", execution__workflow=f"wf{SPOOF}")
    packet_reject(packet_id=other.id, user=bob, comment=f"no {SPOOF}")
    return packet


def _pages(packet):
    return [
        "/approvals/",
        f"/approvals/?q={SPOOF}",
        f"/approvals/{packet.id}/",
        f"/executions/{packet.execution_id}/",
        "/audit/",
        "/metrics/",
        reverse("admin:approvals_pausepacket_changelist"),
        reverse("admin:approvals_pausepacket_change", args=[packet.id]),
        reverse("admin:approvals_gatecheck_changelist"),
        reverse("admin:approvals_execution_changelist"),
    ]


def test_no_page_shows_a_hidden_character_raw(client, spoofed):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    for url in _pages(spoofed):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        raw = HIDDEN.search(html)
        assert raw is None, (url, f"U+{ord(raw.group()):04X}", html[raw.start() - 80 : raw.end()])
        assert "\\u202e" in html, url
    # These lists show no agent text (actors, recipients), and no raw character either.
    for name in ("admin:audit_auditevent_changelist", "admin:approvals_outboxmessage_changelist"):
        assert HIDDEN.search(client.get(reverse(name)).content.decode()) is None


def test_the_packet_page_shows_the_spoof_escaped_in_each_place(client, alice, spoofed):
    client.force_login(alice)
    html = unescape(client.get(f"/approvals/{spoofed.id}/").content.decode())
    assert re.search(r"<code>invoice\\u202efdp\.exe</code>", html)  # the tool
    assert "step\\u0001\\u001b" in html  # the step name
    assert "ctx" + "invoice\\u202efdp.exe" in html  # a context name
    assert '"k\\u2066": "x\\u0085y"' in html  # the args, as JSON


def test_a_result_message_naming_an_agent_owner_shows_it_escaped(client, alice, packet_for):
    from approvals.models import Execution

    packet = packet_for()
    Execution.objects.filter(id=packet.execution_id).update(owner=f"team{SPOOF}")
    client.force_login(alice)
    response = client.post(f"/approvals/{packet.id}/reject/", {"comment": "no"}, follow=True)
    html = response.content.decode()
    assert "team" + "invoice\\u202efdp.exe" in html and not HIDDEN.search(html)
