"""The top bar's open count: exact below the cap, "N+" from it."""

import copy
import uuid

import pytest
from django.contrib.auth.models import Group, Permission

from approvals import dashboard
from approvals.dashboard import CappedCount
from approvals.models import PausePacket, PausePacketGroupObjectPermission


@pytest.fixture
def cap(monkeypatch, read_path):
    monkeypatch.setattr(dashboard, "QUEUE_COUNT_CAP", 3)
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


def test_a_capped_count_reads_as_at_least():
    assert str(CappedCount(1000, exact=False)) == "1,000+"
    assert str(CappedCount(999, exact=True)) == "999"
    assert str(CappedCount.of(1000, 1000)) == "1,000+"


def test_the_open_count_is_capped(client, alice, charlie, copies, cap):
    copies(3)
    client.force_login(alice)
    assert client.get("/approvals/open-count/").content.decode().strip() == "3+"
    client.force_login(charlie)
    assert client.get("/approvals/open-count/").content.decode().strip() == "0"


def test_a_thousand_open_packets_read_as_1000_plus(client, alice, copies, read_path):
    copies(dashboard.QUEUE_COUNT_CAP + 1)
    client.force_login(alice)
    assert client.get("/approvals/open-count/").content.decode().strip() == "1,000+"
