"""/approvals/ status counts and the top bar's open count: exact below the cap, "N+" from it."""

import copy
import re
import uuid

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import PausePacket, PausePacketGroupObjectPermission
from approvals.selectors import queue
from approvals.selectors.queue import CappedCount


@pytest.fixture
def cap(monkeypatch, read_path):
    monkeypatch.setattr(queue, "QUEUE_COUNT_CAP", 3)
    return 3


@pytest.fixture
def copies(packet_for):
    """`copies(n, status=..., group=...)`: n packets like a gated one, viewable by the group.

    bulk_create, so a test can hold a thousand packets for the price of one gate check.
    """

    def make(count, *, status="pending", group="reviewers"):
        template = packet_for(execution__thread_id=f"copies-{uuid.uuid4().hex[:8]}")
        PausePacket.objects.filter(id=template.id).update(status=status)
        view = Permission.objects.get(codename="view_pausepacket")
        grantee = Group.objects.get_or_create(name=group)[0]
        if group != "reviewers":
            PausePacketGroupObjectPermission.objects.filter(content_object=template).delete()
            PausePacketGroupObjectPermission.objects.create(
                content_object=template, group=grantee, permission=view
            )
        template.refresh_from_db()
        made = []
        for step in range(1, count):
            packet = copy.copy(template)
            packet.pk, packet.step_index = uuid.uuid4(), 1000 + step
            made.append(packet)
        PausePacket.objects.bulk_create(made)
        PausePacketGroupObjectPermission.objects.bulk_create(
            PausePacketGroupObjectPermission(content_object=packet, group=grantee, permission=view)
            for packet in made
        )

    return make


def tabs(html: str) -> dict[str, str]:
    """What each status tab says, with the tabs that say 0 left out."""
    found = re.findall(r'data-status-count="([^"]+)">([^<]*)<', html)
    return {status: count for status, count in found if count != "0"}


def pager(html: str) -> str:
    found = re.search(r"<span>(Page [^<]*)</span>", html)
    return found.group(1) if found else ""


def test_a_capped_count_reads_as_at_least():
    assert str(CappedCount(1000, exact=False)) == "1,000+"
    assert str(CappedCount(999, exact=True)) == "999"
    assert str(CappedCount.of(1000, 1000)) == "1,000+"
    assert str(CappedCount.of(3, 1000) + CappedCount.of(1000, 1000)) == "1,003+"
    assert CappedCount.of(2, 1000) + CappedCount.of(5, 1000) == CappedCount(7, exact=True)


def test_counts_below_the_cap_are_exact(logged_in, alice, copies, cap):
    copies(2)
    copies(1, status="rejected")
    html = logged_in(alice).get("/approvals/").content.decode()
    assert tabs(html) == {"open": "2", "pending": "2", "rejected": "1", "all": "3"}


def test_a_count_that_reaches_the_cap_shows_a_plus(logged_in, alice, copies, cap):
    copies(3)
    html = logged_in(alice).get("/approvals/?status=rejected").content.decode()
    assert tabs(html) == {"open": "3+", "pending": "3+", "all": "3+"}


def test_totals_add_their_capped_parts(logged_in, alice, copies, cap):
    copies(5)
    copies(1, status="re_review")
    copies(2, status="expired")
    html = logged_in(alice).get("/approvals/?status=expired").content.decode()
    expected = {"open": "4+", "pending": "3+", "re_review": "1", "expired": "2", "all": "6+"}
    assert tabs(html) == expected


def test_pages_go_on_past_the_cap(logged_in, alice, copies, cap, monkeypatch):
    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    copies(7)
    client = logged_in(alice)
    first = client.get("/approvals/").content.decode()
    assert pager(first) == "Page 1 of 2+" and 'rel="next"' in first
    # The current tab counts as far as its next page (here 4 packets, past the cap of 3).
    assert tabs(first)["open"] == "4+"
    second = client.get("/approvals/?page=2").content.decode()
    assert pager(second) == "Page 2 of 3+" and 'rel="next"' in second
    third = client.get("/approvals/?page=3").content.decode()
    assert pager(third) == "Page 3 of 4" and 'rel="next"' in third
    last = client.get("/approvals/?page=4").content.decode()
    assert pager(last) == "Page 4 of 4" and 'rel="next"' not in last
    assert last.count("data-row-link") == 1
    seen = {re.search(r'id="row-([^"]+)"', html).group(1) for html in (first, second, third, last)}
    assert len(seen) == 4


def test_a_page_past_the_end_shows_the_last_page(logged_in, alice, copies, cap, monkeypatch):
    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    copies(5)
    client = logged_in(alice)
    assert pager(client.get("/approvals/?page=99").content.decode()) == "Page 3 of 3"
    assert pager(client.get("/approvals/?page=x").content.decode()) == "Page 1 of 2+"


def test_packets_the_user_may_not_view_are_never_counted(logged_in, alice, charlie, copies, cap):
    copies(5, group="auditors-only")
    copies(2)
    html = logged_in(alice).get("/approvals/?status=all").content.decode()
    assert tabs(html) == {"open": "2", "pending": "2", "all": "2"}
    assert html.count("data-row-link") == 2
    assert tabs(logged_in(charlie).get("/approvals/").content.decode()) == {}


def test_counts_follow_the_filters(logged_in, alice, copies, packet_for, cap):
    copies(4)
    packet_for(execution__thread_id="pay-1", execution__workflow="payments")
    html = logged_in(alice).get("/approvals/?workflow=payments").content.decode()
    assert tabs(html) == {"open": "1", "pending": "1", "all": "1"}


def test_the_open_count_is_capped(client, alice, charlie, copies, cap):
    copies(3)
    client.force_login(alice)
    assert client.get("/approvals/open-count/").content.decode().strip() == "3+"
    client.force_login(charlie)
    assert client.get("/approvals/open-count/").content.decode().strip() == "0"


def test_a_thousand_open_packets_read_as_1000_plus(logged_in, alice, copies, read_path):
    copies(queue.QUEUE_COUNT_CAP + 1)
    client = logged_in(alice)
    html = client.get("/approvals/").content.decode()
    assert tabs(html) == {"open": "1,000+", "pending": "1,000+", "all": "1,000+"}
    assert pager(html) == "Page 1 of 20+"
    assert client.get("/approvals/open-count/").content.decode().strip() == "1,000+"
