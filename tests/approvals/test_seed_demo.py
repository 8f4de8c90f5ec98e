from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db.models import F, Max, Min
from django.utils import timezone

from approvals.demo import DEMO_PASSWORD, POLICIES, USERS, demo_seed, history_scenarios
from approvals.models import (
    Execution,
    GateCheck,
    OutboxMessage,
    PausePacket,
    Policy,
    PolicyVersion,
    StepOutcome,
)
from audit.models import AuditEvent
from audit.verify import verify_chain


@pytest.fixture
def seeded(db):
    return demo_seed()


def test_packets_exist_in_every_status(seeded):
    statuses = set(PausePacket.objects.values_list("status", flat=True))
    assert statuses == set(PausePacket.Status.values)


def test_a_pending_packet_waits_for_its_second_approval(seeded):
    waiting = [
        packet
        for packet in PausePacket.objects.filter(status="pending", required_approvals=2)
        if packet.votes.filter(snapshot_hash=packet.snapshot_hash).count() == 1
    ]
    assert [packet.policy_name for packet in waiting] == ["privileged-iam"]


def test_a_pending_packet_is_stale_but_not_expired(seeded):
    now = timezone.now()
    assert PausePacket.objects.filter(
        status="pending", fresh_until__lt=now, expires_at__gt=now
    ).exists()


def test_a_pending_packet_has_a_side_effect_to_reconcile(seeded):
    assert PausePacket.objects.filter(status="pending", side_effect="indeterminate").exists()


def test_branches_follow_the_branch_table(seeded):
    branches = dict(PausePacket.objects.values_list("status", "branch").distinct())
    assert branches["terminated"] == "terminate"
    assert branches["reconciling"] == "reconcile"
    assert branches["applied"] == "reconcile"
    assert branches["re_review"] == "re_review"
    superseded = PausePacket.objects.get(status="superseded", execution__thread_id="support-7780")
    assert superseded.superseded_by.status == "pending"


def test_gate_checks_allow_and_block_and_a_gap_and_a_sub_agent_are_recorded(seeded):
    decisions = set(GateCheck.objects.values_list("decision", flat=True))
    assert decisions == {"allow", "block", "require_approval"}
    assert StepOutcome.objects.filter(gated=False).count() == 1
    assert Execution.objects.filter(parent__isnull=False).count() == 1


def test_agent_markup_is_stored_as_given_for_the_views_to_escape(seeded):
    assert PausePacket.objects.filter(args__body__icontains="<script>alert(1)</script>").exists()


def test_users_roles_and_the_auditor_permission_are_set_up(seeded):
    assert set(USERS) <= set(User.objects.values_list("username", flat=True))
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="alice").check_password(DEMO_PASSWORD)
    assert set(User.objects.get(username="bob").groups.values_list("name", flat=True)) == {
        "it-approvers",
        "reviewers",
    }
    erin = User.objects.get(username="erin")
    assert erin.has_perm("audit.view_auditevent")
    assert not User.objects.get(username="carol").has_perm("audit.view_auditevent")
    assert Group.objects.filter(name="finance-approvers").exists()


def test_a_new_service_account_token_is_returned_once(seeded):
    assert seeded.service_account_created
    assert seeded.token.startswith("gk_")
    again = demo_seed()
    assert not again.service_account_created
    assert again.token is None


def test_a_second_run_succeeds_and_duplicates_nothing(seeded):
    counts = (
        User.objects.count(),
        Policy.objects.count(),
        PolicyVersion.objects.count(),
        Execution.objects.count(),
        PausePacket.objects.count(),
    )
    events = AuditEvent.objects.count()
    again = demo_seed()
    assert again.users_created == []
    assert again.policies_created == []
    assert again.executions_created == []
    assert len(again.executions_existing) == len(seeded.executions_created)
    assert counts == (
        User.objects.count(),
        Policy.objects.count(),
        PolicyVersion.objects.count(),
        Execution.objects.count(),
        PausePacket.objects.count(),
    )
    assert AuditEvent.objects.count() == events
    assert Policy.objects.count() == len(POLICIES)


def test_an_edited_demo_policy_is_kept_on_a_second_run(seeded):
    from approvals.services.policies import policy_document, policy_save

    document = {**policy_document(Policy.objects.get(name="outbound-email")), "priority": 31}
    policy_save(document=document, actor="user:admin")
    demo_seed()
    assert Policy.objects.get(name="outbound-email").priority == 31


def test_the_command_prints_the_token_only_when_it_is_new(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "token=gk_" in first
    assert "token=" not in second
    assert "Executions: 0 created" in second


def test_a_scenario_that_cannot_be_made_fails_clearly_and_writes_nothing(db):
    from django.core.management.base import CommandError

    from approvals.services.policies import policy_save

    policy_save(
        document={"name": "large-payments", "effect": "allow", "match": {"tool": "payments.*"}},
        actor="user:admin",
    )
    with pytest.raises(
        CommandError, match=r"demo execution payout-\d+ could not be made: .* answered allow"
    ):
        call_command("seed_demo")
    assert not User.objects.exists()
    assert not Execution.objects.exists()


def _history():
    """The packets of the two weeks of a team's work the demo opens on, before today's."""
    threads = [thread for thread, _scenario in history_scenarios(timezone.now())]
    return PausePacket.objects.filter(execution__thread_id__in=threads)


def test_two_weeks_of_history_with_believable_times_expiries_a_re_review_and_a_reconcile(
    seeded,
):
    history = _history()
    days = {packet.created_at.date() for packet in history}
    assert len(days) == 10  # every working day of the two weeks before today
    assert all(day.weekday() < 5 for day in days)
    assert min(days) >= timezone.localdate() - timedelta(days=14)
    asked = history.exclude(status="superseded").values_list("created_at", flat=True)
    assert all(9 <= moment.hour < 18 for moment in asked)

    decided = PausePacket.objects.filter(status__in=["approved", "rejected", "expired"])
    latencies = sorted(packet.decided_at - packet.created_at for packet in decided)
    assert latencies[0] >= timedelta(minutes=1)
    assert timedelta(minutes=3) < latencies[len(latencies) // 2] < timedelta(hours=1)
    assert latencies[-1] > timedelta(hours=1)

    expired = history.filter(status="expired")
    assert expired.count() >= 3
    assert all(p.decided_at - p.expires_at < timedelta(minutes=1) for p in expired)
    assert history.filter(status="superseded", superseded_by__status="approved").exists()
    events = AuditEvent.objects.filter(packet_id__in=history.values("id"))
    assert events.filter(kind="packet.re_review").exists()
    reconciled = events.filter(kind="step.outcome", data__reconciled=True)
    assert reconciled.filter(data__side_effect="not_landed").exists()


def test_the_record_is_appended_in_the_order_it_happened_and_history_was_sent_then(seeded):
    times = list(AuditEvent.objects.order_by("id").values_list("at", flat=True))
    assert times == sorted(times)
    assert times[0] < timezone.now() - timedelta(days=14)
    assert verify_chain().intact
    span = Execution.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["last"] - span["first"] > timedelta(days=10)
    assert not GateCheck.objects.filter(created_at__gt=timezone.now() - timedelta(minutes=1))

    sent = OutboxMessage.objects.filter(packet__in=_history())
    assert sent.exists()
    assert not sent.exclude(status="sent").exclude(sent_at=F("created_at")).exists()
    recent = OutboxMessage.objects.filter(created_at__gt=timezone.now() - timedelta(minutes=15))
    assert recent.exists() and not recent.exclude(status="pending").exists()
