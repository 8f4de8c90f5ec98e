"""The database itself holds the invariants, whatever code writes to it."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import Execution, GateCheck, PausePacket


def test_one_thread_id_per_service_account(agent):
    Execution.objects.create(service_account=agent, thread_id="t", workflow="w")
    with pytest.raises(IntegrityError), transaction.atomic():
        Execution.objects.create(service_account=agent, thread_id="t", workflow="w")


def test_one_idempotency_key_per_service_account(gate, agent):
    gate(idempotency_key="k")
    check = GateCheck.objects.get()
    check.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        check.save(force_insert=True)


def test_at_most_one_open_packet_per_step(packet_for):
    packet = packet_for()
    packet.pk = None
    packet.id = None
    with pytest.raises(IntegrityError), transaction.atomic():
        packet.save(force_insert=True)


def test_a_closed_packet_does_not_block_a_new_one_for_the_same_step(packet_for, alice):
    from approvals.services.review import packet_reject

    first = packet_for()
    packet_reject(packet_id=first.id, user=alice)
    second = packet_for()
    assert second.id != first.id and second.status == "pending"
    assert PausePacket.objects.filter(step_index=3).count() == 2


def test_expiry_cannot_precede_creation(packet_for):
    packet = packet_for()
    with pytest.raises(IntegrityError), transaction.atomic():
        PausePacket.objects.filter(id=packet.id).update(
            expires_at=timezone.now() - timezone.timedelta(days=2)
        )
