"""/metrics/: the approval SLA as SVG charts, with the same numbers in tables."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import PausePacket
from approvals.selectors.sla import window_start
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import packet_approve, packet_reconcile, packet_reject


def _decided(packet, *, latency: float, at):
    """Pin a decided packet's times: decided at `at`, `latency` seconds after it was made."""
    PausePacket.objects.filter(id=packet.id).update(
        created_at=at - timedelta(seconds=latency), decided_at=at
    )


def _made_ago(packet, **ago):
    PausePacket.objects.filter(id=packet.id).update(created_at=timezone.now() - timedelta(**ago))


@pytest.fixture
def erin(make_user):
    """An auditor: reads the whole decision record, reviews nothing."""
    auditor = make_user("erin", "auditors")
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return auditor


@pytest.fixture
def fiona(make_user):
    """A payments approver: sees the payments packets and nothing of hr-onboarding."""
    return make_user("fiona", "finance")


@pytest.fixture
def known(packet_for, policy, alice, fiona):
    """Packets with pinned times, decided a minute ago.

    hr-onboarding (reviewers; owner hr-team): allow after 60 s and 600 s, block after 120 s,
    skip (reconciled) after 300 s, one superseded (not counted), open ones 2 and 30 minutes old.
    payments (finance; owner finance): allow after 30 s, expired after 2 h, one open 30 h old.
    """
    policy(name="payments", match={"workflow": "payments"}, approvers="finance")
    Group.objects.create(name="hr-team")  # an owner names an existing group
    # Today, even in the first minute of the day, so that ?days=1 still counts them.
    at = max(timezone.now() - timedelta(minutes=1), window_start(days=1, now=timezone.now()))

    def hr(thread, **overrides):
        return packet_for(execution__thread_id=thread, execution__owner="hr-team", **overrides)

    def payments(thread):
        return packet_for(
            execution__thread_id=thread,
            execution__workflow="payments",
            execution__owner="finance",
            action__tool="payments.send",
        )

    for thread, latency in (("hr-a", 60), ("hr-c", 600)):
        packet = hr(thread)
        packet_approve(packet_id=packet.id, user=alice)
        _decided(packet, latency=latency, at=at)
    blocked = hr("hr-b")
    packet_reject(packet_id=blocked.id, user=alice)
    _decided(blocked, latency=120, at=at)
    skipped = hr("hr-d", action__side_effect="indeterminate")
    packet_approve(packet_id=skipped.id, user=alice)
    packet_reconcile(packet_id=skipped.id, user=alice, happened=True)
    _decided(skipped, latency=300, at=at)
    superseded = hr("hr-e")
    PausePacket.objects.filter(id=superseded.id).update(status="superseded")
    _decided(superseded, latency=99_999, at=at)
    _made_ago(hr("hr-open-new"), minutes=2)
    _made_ago(hr("hr-open-old"), minutes=30)

    allowed = payments("pay-a")
    packet_approve(packet_id=allowed.id, user=fiona)
    _decided(allowed, latency=30, at=at)
    expired = payments("pay-b")
    PausePacket.objects.filter(id=expired.id).update(
        created_at=at - timedelta(hours=3), expires_at=at - timedelta(hours=1)
    )
    assert packets_expire_overdue() == 1
    _decided(expired, latency=7200, at=at)
    _made_ago(payments("pay-open"), hours=30)
    return at


def _table(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row of one table, cell by cell, unescaped."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def _svg(html: str, chart_id: str) -> str:
    return re.search(rf'<svg[^>]*aria-labelledby="{chart_id}-title.*?</svg>', html, re.S).group(0)


def test_anonymous_visitors_go_to_login(client, db):
    response = client.get("/metrics/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_wrong_method_is_405(logged_in, alice):
    assert logged_in(alice).post("/metrics/").status_code == 405


def test_a_reviewer_sees_median_and_p90_per_workflow_and_owner(logged_in, alice, known):
    html = logged_in(alice).get("/metrics/").content.decode()
    # Latencies 60, 120, 300, 600 s: median 210 s, p90 300 + 0.7 * 300 = 510 s.
    assert _table(html, "table-workflow") == [["hr-onboarding", "4", "3.5 min", "8.5 min"]]
    assert _table(html, "table-owner") == [["hr-team", "4", "3.5 min", "8.5 min"]]
    assert 'data-total="decided">4<' in html and 'data-total="open">2<' in html


def test_a_user_sees_only_figures_from_packets_they_may_view(logged_in, fiona, charlie, known):
    html = logged_in(fiona).get("/metrics/").content.decode()
    assert "hr-onboarding" not in html and "hr-team" not in html
    # Latencies 30 s and 7200 s: median 3615 s, p90 30 + 0.9 * 7170 = 6483 s.
    assert _table(html, "table-workflow") == [["payments", "2", "1 h", "1.8 h"]]
    assert _table(html, "table-expired") == [["payments", "1", "2", "50%"]]
    assert _table(html, "table-ages") == [
        ["< 15 min", "0"],
        ["< 1 h", "0"],
        ["< 4 h", "0"],
        ["< 24 h", "0"],
        ["older", "1"],
    ]
    outsider = logged_in(charlie).get("/metrics/").content.decode()
    assert "payments" not in outsider and "<svg" not in outsider
    assert 'data-total="decided">0<' in outsider


def test_a_superuser_sees_every_packet(logged_in, make_user, known):
    admin = make_user("root", is_superuser=True, is_staff=True)
    html = logged_in(admin).get("/metrics/").content.decode()
    assert [row[:2] for row in _table(html, "table-workflow")] == [
        ["hr-onboarding", "4"],
        ["payments", "2"],
    ]
    assert _table(html, "table-expired") == [
        ["hr-onboarding", "0", "4", "0%"],
        ["payments", "1", "2", "50%"],
    ]
    assert [row[1] for row in _table(html, "table-ages")] == ["1", "1", "0", "0", "1"]
    day = timezone.localdate(known)
    days = _table(html, "table-days")
    assert len(days) == 14
    today = next(row for row in days if row[0] == f"{day:%a} {day.day} {day:%b}")
    # Allowed: hr-a, hr-c, pay-a; blocked: hr-b and the expired pay-b; skipped: hr-d.
    assert today[1:] == ["3", "2", "1", "6"]
    assert sum(int(row[4]) for row in days) == 6


def test_an_auditor_sees_the_whole_organisation_and_is_told_so(logged_in, erin, fiona, known):
    html = logged_in(erin).get("/metrics/").content.decode()
    assert [row[:2] for row in _table(html, "table-workflow")] == [
        ["hr-onboarding", "4"],
        ["payments", "2"],
    ]
    assert 'data-total="decided">6<' in html and 'data-total="open">3<' in html
    assert 'data-scope="organisation"' in html and "Whole organisation" in html

    reviewer = logged_in(fiona).get("/metrics/").content.decode()
    assert 'data-scope="own"' in reviewer and "packets you may view" in reviewer
    assert "Whole organisation" not in reviewer


def test_an_auditor_with_nothing_decided_is_not_told_about_packets_they_may_view(logged_in, erin):
    html = logged_in(erin).get("/metrics/").content.decode()
    assert "No packet was decided in this window." in html
    assert "you may view" not in html


def test_each_chart_is_an_accessible_svg_beside_its_table(logged_in, alice, known):
    html = logged_in(alice).get("/metrics/").content.decode()
    for chart in ("chart-workflow", "chart-owner", "chart-ages", "chart-days"):
        svg = _svg(html, chart)
        assert svg.startswith('<svg class="chart" role="img"')
        assert f'<title id="{chart}-title">' in svg and f'<desc id="{chart}-desc">' in svg
    assert "3.5 min" in _svg(html, "chart-workflow")
    assert "No packet you may view expired" in html


def test_agent_and_admin_names_are_escaped_in_charts_and_tables(logged_in, make_user, packet_for):
    admin = make_user("root", is_superuser=True)
    hostile = "<script>alert('x')</script>"
    Group.objects.create(name='"><img src=x>')  # admins name groups; an owner must name one
    packet = packet_for(execution__workflow=hostile, execution__owner='"><img src=x>')
    packet_approve(packet_id=packet.id, user=admin)
    _made_ago(packet_for(execution__thread_id="open", execution__workflow=hostile), minutes=1)
    html = logged_in(admin).get("/metrics/").content.decode()
    assert "<script>alert" not in html and "<img src=x>" not in html
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert escaped in _svg(html, "chart-workflow")
    assert escaped in re.search(r"<desc.*?</desc>", _svg(html, "chart-workflow")).group(0)
    assert "&quot;&gt;&lt;img src=x&gt;" in _svg(html, "chart-owner")
    assert f'<th scope="row">{escaped}</th>' in html.split('id="table-workflow"')[1]
    assert _table(html, "table-workflow")[0][0] == hostile
    assert "&quot;&gt;&lt;img src=x&gt;" in html.split('id="table-owner"')[1]


@pytest.mark.parametrize("scope", ["own", "organisation"])
@pytest.mark.parametrize("workflows", [1, 12])
def test_the_page_costs_the_same_queries_however_many_packets(
    logged_in, alice, erin, packet_for, workflows, scope
):
    for index in range(workflows):
        packet = packet_for(execution__thread_id=f"t-{index}", execution__workflow=f"flow-{index}")
        if index % 2:
            packet_approve(packet_id=packet.id, user=alice)
    client = logged_in(alice if scope == "own" else erin)
    client.get("/metrics/")  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics/")
    assert response.status_code == 200
    assert f'data-scope="{scope}"' in response.content.decode()
    # Session, user, then latency by workflow, by owner, open by age, decisions per day; and
    # the user's and groups' global permissions (which choose the scope, and the top bar
    # links Audit only for auditors).
    assert len(queries) == 8, "\n".join(q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize("days", ["0", "91", "-3", "seven", "1e3", "14.5", " "])
def test_a_bad_days_value_falls_back_to_fourteen_and_says_so(logged_in, alice, known, days):
    response = logged_in(alice).get("/metrics/", {"days": days})
    assert response.status_code == 200
    html = response.content.decode()
    assert len(_table(html, "table-days")) == 14
    if days.strip():
        assert 'role="alert"' in html and "days must be a whole number from 1 to 90" in html
        assert 'aria-invalid="true"' in html


def test_days_narrows_the_window(logged_in, alice, known):
    PausePacket.objects.filter(execution__thread_id="hr-c").update(
        decided_at=known - timedelta(days=5), created_at=known - timedelta(days=5, seconds=600)
    )
    client = logged_in(alice)
    week = client.get("/metrics/?days=7").content.decode()
    assert len(_table(week, "table-days")) == 7
    assert _table(week, "table-workflow")[0][1] == "4"
    assert 'role="alert"' not in week
    one_day = client.get("/metrics/?days=1").content.decode()
    assert _table(one_day, "table-days")[0][1:] == ["1", "1", "1", "3"]
    assert _table(one_day, "table-workflow")[0][1] == "3"
