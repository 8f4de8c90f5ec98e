from approvals.models import PausePacket
from approvals.services.review import packet_approve


def test_unmatched_gate_check_requires_approval_and_a_reviewer_can_approve(gate, alice):
    response = gate()
    assert response["decision"] == "require_approval"
    packet = PausePacket.objects.get(id=response["approval"]["id"])
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.packet.status == "approved"
    assert result.packet.decision == "allow"
