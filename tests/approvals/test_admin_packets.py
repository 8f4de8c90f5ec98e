"""Pause packets and the rest of what orchestrators and reviewers produce: read-only in the admin,
except for guardian's per-packet permissions, through which an admin delegates one packet."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import Execution, GateCheck, PausePacket, StepOutcome, Vote
from approvals.permissions import can_resume, can_view
from approvals.services.executions import step_record_outcome
from approvals.services.review import packet_approve

LIST_URL = reverse("admin:approvals_pausepacket_changelist")


@pytest.fixture
def packet(gate) -> PausePacket:
    response = gate()
    return PausePacket.objects.get(id=response["approval"]["id"])


@pytest.fixture
def make_packets(gate):
    def make(count: int) -> list[PausePacket]:
        ids = [gate(execution__thread_id=f"run-{n}")["approval"]["id"] for n in range(count)]
        return list(PausePacket.objects.filter(id__in=ids))

    return make


def permissions_url(packet, *rest) -> str:
    return reverse("admin:approvals_pausepacket_permissions", args=[packet.pk]) + "".join(rest)


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_packet_list_runs_the_same_number_of_queries_for_one_or_many(
    admin_client, make_packets
):
    make_packets(1)
    one = queries_for(admin_client, LIST_URL)
    make_packets(4)

    assert queries_for(admin_client, LIST_URL) == one


def test_packets_filter_by_status_workflow_and_policy_and_search_by_thread_tool_and_step(
    admin_client, make_packets, gate
):
    make_packets(2)
    gate(
        execution__thread_id="mail-1",
        execution__workflow="outreach",
        action__tool="email.send",
        step__name="send_offer",
    )

    def listed(**params) -> set[str]:
        result = admin_client.get(LIST_URL, params).context["cl"].result_list
        return {packet.execution.thread_id for packet in result}

    assert listed(workflow="outreach") == {"mail-1"}
    assert listed(status__exact="pending") == {"run-0", "run-1", "mail-1"}
    assert listed(status__exact="approved") == set()
    assert listed(policy_name="") == {"run-0", "run-1", "mail-1"}
    assert listed(q="run-1") == {"run-1"}
    assert listed(q="email.send") == {"mail-1"}
    assert listed(q="send_offer") == {"mail-1"}


def test_packets_cannot_be_added_changed_or_deleted(admin_client, packet):
    change = reverse("admin:approvals_pausepacket_change", args=[packet.pk])
    delete = reverse("admin:approvals_pausepacket_delete", args=[packet.pk])

    assert admin_client.get(reverse("admin:approvals_pausepacket_add")).status_code == 403
    assert admin_client.post(change, {"status": "approved"}).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    packet.refresh_from_db()
    assert packet.status == "pending"


def test_the_packet_page_is_read_only_and_escapes_agent_text(admin_client, gate):
    response = gate(action__args={"note": "<img src=x onerror=alert(1)>"})
    url = reverse("admin:approvals_pausepacket_change", args=[response["approval"]["id"]])

    content = admin_client.get(url).content.decode()

    assert 'name="_save"' not in content
    assert "<img src=x" not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content
    assert "Object permissions" in content


def test_an_admin_can_delegate_one_packet_to_a_group(admin_client, packet, make_user, gate):
    dora = make_user("dora", "auditors")
    other = PausePacket.objects.get(id=gate(execution__thread_id="other")["approval"]["id"])
    assert not can_resume(dora, packet)

    picked = admin_client.post(
        permissions_url(packet), {"group": "auditors", "submit_manage_group": "1"}
    )
    group = Group.objects.get(name="auditors")
    manage = permissions_url(packet, f"group-manage/{group.pk}/")
    assert picked.status_code == 302
    assert picked["Location"] == manage
    saved = admin_client.post(manage, {"permissions": ["view_pausepacket", "resume_pausepacket"]})

    assert saved.status_code == 302
    dora = type(dora).objects.get(pk=dora.pk)  # a fresh user: permissions are cached per object
    assert can_view(dora, packet)
    assert can_resume(dora, packet)
    assert not can_view(dora, other)
    assert "auditors" in admin_client.get(permissions_url(packet)).content.decode()
    logged = LogEntry.objects.get(object_id=str(packet.pk))
    assert logged.get_change_message() == (
        "Object permissions of group auditors: resume_pausepacket, view_pausepacket."
    )


def test_a_delegate_group_member_can_then_approve_the_packet(admin_client, packet, make_user):
    dora = make_user("dora", "auditors")
    group = Group.objects.get(name="auditors")

    admin_client.post(
        permissions_url(packet, f"group-manage/{group.pk}/"),
        {"permissions": ["view_pausepacket", "resume_pausepacket"]},
    )

    assert packet_approve(packet_id=packet.pk, user=dora).packet.status == "approved"


def test_an_admin_can_delegate_to_a_user_and_take_it_back(admin_client, packet, charlie):
    picked = admin_client.post(
        permissions_url(packet), {"user": "charlie", "submit_manage_user": "1"}
    )
    manage = permissions_url(packet, f"user-manage/{charlie.pk}/")
    assert picked["Location"] == manage

    admin_client.post(manage, {"permissions": ["view_pausepacket", "resume_pausepacket"]})
    assert can_resume(type(charlie).objects.get(pk=charlie.pk), packet)

    # A browser unchecking everything still posts its CSRF token; guardian reads an empty POST
    # as a plain page view.
    admin_client.post(manage, {"permissions": [], "csrfmiddlewaretoken": "unchecked-here"})
    assert not can_resume(type(charlie).objects.get(pk=charlie.pk), packet)


def test_delegation_offers_only_view_and_resume(admin_client, packet, charlie):
    response = admin_client.get(permissions_url(packet, f"user-manage/{charlie.pk}/"))

    choices = [code for code, _ in response.context["form"].fields["permissions"].choices]
    assert sorted(choices) == ["resume_pausepacket", "view_pausepacket"]


def test_staff_who_may_only_view_packets_cannot_delegate(client, packet, make_user):
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pausepacket"))
    client.force_login(viewer)

    assert client.get(LIST_URL).status_code == 200
    response = client.post(
        permissions_url(packet, f"user-manage/{viewer.pk}/"),
        {"permissions": ["view_pausepacket", "resume_pausepacket"]},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert not can_resume(type(viewer).objects.get(pk=viewer.pk), packet)


@pytest.mark.parametrize(
    "path",
    [
        "not-a-uuid/permissions/",
        "{pk}/permissions/user-manage/abc/",
        "{pk}/permissions/group-manage/1e3/",
    ],
)
def test_malformed_ids_on_the_permission_pages_are_not_found(admin_client, packet, path):
    url = LIST_URL + path.format(pk=packet.pk)

    response = admin_client.get(url, follow=True)

    # They fall through to the admin's own catch-all, which says the packet does not exist.
    assert response.redirect_chain[-1] == (reverse("admin:index"), 302)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "model", [Execution, GateCheck, PausePacket, Vote, StepOutcome], ids=lambda m: m.__name__
)
def test_operator_lists_run_the_same_number_of_queries_for_one_or_many(
    admin_client, gate, alice, model
):
    def add_run(n: int) -> None:
        response = gate(execution__thread_id=f"run-{n}")
        packet_approve(packet_id=response["approval"]["id"], user=alice)
        step_record_outcome(
            service_account=Execution.objects.get(thread_id=f"run-{n}").service_account,
            thread_id=f"run-{n}",
            step_index=3,
            side_effect="landed",
            detail={},
        )

    url = reverse(f"admin:approvals_{model._meta.model_name}_changelist")
    add_run(0)
    one = queries_for(admin_client, url)
    add_run(1)
    add_run(2)

    assert queries_for(admin_client, url) == one


@pytest.mark.parametrize(
    "model", [Execution, GateCheck, Vote, StepOutcome], ids=lambda m: m.__name__
)
def test_operator_views_are_read_only(admin_client, packet, alice, model):
    packet_approve(packet_id=packet.pk, user=alice)
    name = model._meta.model_name

    assert admin_client.get(reverse(f"admin:approvals_{name}_add")).status_code == 403
    row = model.objects.first()
    if row is not None:
        change = reverse(f"admin:approvals_{name}_change", args=[row.pk])
        assert admin_client.get(change).status_code == 200
        assert admin_client.post(change, {}).status_code == 403
        delete = reverse(f"admin:approvals_{name}_delete", args=[row.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
