"""Migration 0007 takes back the resume grants that only ownership gave, and nothing else."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.models import (
    PausePacket,
    PausePacketGroupObjectPermission,
    PausePacketUserObjectPermission,
)
from approvals.permissions import can_resume, can_view

BEFORE = ("approvals", "0006_packet_callback")
AFTER = ("approvals", "0007_owner_grants_view_only")


def _migrate(target) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


@pytest.fixture(autouse=True)
def _leave_the_schema_migrated():
    """Whatever a test went back to, the tests after it find every migration applied."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_owner_grant(packet: PausePacket) -> None:
    """What packet creation gave the owner before: resume as well as view."""
    resume = Permission.objects.get(codename="resume_pausepacket")
    if packet.owner.startswith("user:"):
        user = User.objects.get(username=packet.owner.removeprefix("user:"))
        PausePacketUserObjectPermission.objects.create(
            user=user, permission=resume, content_object=packet
        )
    else:
        PausePacketGroupObjectPermission.objects.get_or_create(
            group=Group.objects.get(name=packet.owner), permission=resume, content_object=packet
        )


def _delegated(packet: PausePacket, principal: str, admin: User) -> None:
    """The admin history line the packet admin's permission page writes."""
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(PausePacket),
        object_id=str(packet.id),
        object_repr=str(packet),
        action_flag=CHANGE,
        change_message=f"Object permissions of {principal}: resume_pausepacket, view_pausepacket.",
    )


@pytest.mark.django_db(transaction=True)
def test_only_grants_that_ownership_alone_gave_are_taken_back(policy, packet_for, make_user):
    bob = make_user("bob", "reviewers")
    fiona = make_user("fiona", "finance-approvers")
    lee = make_user("lee", "it-leads")
    admin = make_user("root", is_superuser=True, is_staff=True)
    policy("payouts", match={"tool": "payments.*"}, approvers="finance-approvers")
    policy("deploys", match={"tool": "deploy.*"}, escalate_to="it-leads")
    # Packets are made by today's gate, whose tables later migrations extend; the grants they
    # had before 0007 are then given on the schema as it was.
    made = {
        thread: packet_for(execution__thread_id=thread, execution__owner=owner, action__tool=tool)
        for thread, owner, tool in [
            ("t-routed", "reviewers", "payments.transfer"),
            ("t-same", "reviewers", "email.send"),
            ("t-user", "user:bob", "payments.transfer"),
            ("t-escalated", "it-leads", "deploy.prod"),
            ("t-not-yet", "it-leads", "deploy.prod"),
            ("t-delegated-group", "reviewers", "payments.transfer"),
            ("t-delegated-user", "user:bob", "payments.transfer"),
            ("t-delegated-other", "reviewers", "payments.transfer"),
        ]
    }
    _migrate(BEFORE)

    def packet(thread):
        _old_owner_grant(made[thread])
        return made[thread]

    routed_elsewhere = packet("t-routed")
    owner_is_route = packet("t-same")
    user_owner = packet("t-user")
    escalated = packet("t-escalated")
    PausePacket.objects.filter(id=escalated.id).update(escalated_at=timezone.now())
    PausePacketGroupObjectPermission.objects.get_or_create(
        group=Group.objects.get(name="it-leads"),
        permission=Permission.objects.get(codename="resume_pausepacket"),
        content_object=escalated,
    )
    not_yet_escalated = packet("t-not-yet")
    delegated_to_group = packet("t-delegated-group")
    _delegated(delegated_to_group, "group reviewers", admin)
    delegated_to_user = packet("t-delegated-user")
    _delegated(delegated_to_user, "user bob", admin)
    delegated_elsewhere = packet("t-delegated-other")
    _delegated(delegated_elsewhere, "group finance-approvers", admin)
    assert all(
        can_resume(owner, p)
        for owner, p in [(bob, routed_elsewhere), (bob, user_owner), (lee, not_yet_escalated)]
    )

    _migrate(AFTER)

    for owner, taken_back in [
        (bob, routed_elsewhere),
        (bob, user_owner),
        (lee, not_yet_escalated),
        (bob, delegated_elsewhere),
    ]:
        assert can_view(owner, taken_back) and not can_resume(owner, taken_back), taken_back
    for user, kept in [
        (bob, owner_is_route),
        (lee, escalated),
        (bob, delegated_to_group),
        (bob, delegated_to_user),
    ]:
        assert can_resume(user, kept), kept
    for route in [routed_elsewhere, user_owner, delegated_to_group, delegated_elsewhere]:
        assert can_resume(fiona, route)


@pytest.mark.django_db(transaction=True)
def test_going_back_changes_nothing(packet_for, alice):
    packet = packet_for()
    grants = PausePacketGroupObjectPermission.objects.filter(content_object=packet).count()
    _migrate(BEFORE)
    _migrate(AFTER)
    assert PausePacketGroupObjectPermission.objects.filter(content_object=packet).count() == grants
