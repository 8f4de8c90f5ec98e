"""A top-level action is its own transaction: nested inside another it is refused, unchanged;
the demo's seeding() is the one path that plays actions inside one transaction."""

import pytest
from django.db import transaction

from approvals.models import PausePacket
from approvals.services.review import packet_reject
from approvals.services.transactions import seeding


@pytest.mark.django_db(transaction=True)
def test_a_review_action_inside_another_transaction_is_refused(packet_for, alice):
    packet = packet_for()
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        packet_reject(packet_id=packet.id, user=alice, comment="no")
    assert PausePacket.objects.get(id=packet.id).status == PausePacket.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_inside_seeding_actions_nest_in_its_one_transaction(packet_for, alice):
    packet = packet_for()
    with pytest.raises(ZeroDivisionError), seeding():
        packet_reject(packet_id=packet.id, user=alice, comment="no")
        1 / 0  # noqa: B018
    assert PausePacket.objects.get(id=packet.id).status == PausePacket.Status.PENDING
    with seeding():
        packet_reject(packet_id=packet.id, user=alice, comment="no")
    assert PausePacket.objects.get(id=packet.id).status == PausePacket.Status.REJECTED
