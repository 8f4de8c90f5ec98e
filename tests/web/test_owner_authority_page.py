"""The packet page offers each reviewer what they may do: owners get no Approve button."""

import pytest

from approvals.models import PausePacket
from approvals.services.review import packet_approve


@pytest.fixture
def payout(policy, packet_for, bob, make_user):
    """Reviewers own payout-7 (step 0); its payout (step 1) is routed to finance-approvers."""
    make_user("fiona", "finance-approvers")
    policy("payouts", match={"tool": "payments.*"}, approvers="finance-approvers")
    first = packet_for(execution__thread_id="payout-7", step__index=0, action__tool="email.send")
    packet_approve(packet_id=first.id, user=bob)
    return packet_for(
        execution__thread_id="payout-7",
        step__index=1,
        action__tool="payments.transfer",
        action__args={"amount": 90000},
    )


def test_the_owning_team_sees_reject_and_take_over_but_no_approve(client, bob, payout, htmx):
    client.force_login(bob)
    for headers in ({}, htmx):
        html = client.get(f"/approvals/{payout.id}/", headers=headers).content.decode()
        assert "Approve</button>" not in html
        assert "Reject</button>" in html and "Take over</button>" in html
        assert "approving it belongs to finance-approvers" in html


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}])
def test_the_owning_team_cannot_approve_by_posting_the_form(client, bob, payout, headers):
    client.force_login(bob)
    response = client.post(f"/approvals/{payout.id}/approve/", headers=headers, follow=True)
    assert response.status_code == 200
    assert "You may view this approval but hold no authority to decide it." in (
        response.content.decode()
    )
    payout.refresh_from_db()
    assert payout.status == "pending" and not payout.votes.exists()


def test_the_owning_team_may_reject_from_the_page(client, bob, payout):
    client.force_login(bob)
    client.post(f"/approvals/{payout.id}/reject/", {"comment": "not now"})
    assert PausePacket.objects.get(id=payout.id).status == "rejected"


def test_the_route_sees_the_approve_button(client, payout):
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="fiona"))
    html = client.get(f"/approvals/{payout.id}/").content.decode()
    assert "Approve</button>" in html
