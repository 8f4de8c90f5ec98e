"""/approvals/: the queue of open packets the user may view."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import PausePacket
from approvals.services.review import packet_approve, packet_reject


def test_anonymous_visitors_go_to_login(client, db):
    response = client.get("/approvals/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_root_redirects_to_the_queue(client, alice):
    client.force_login(alice)
    assert client.get("/")["Location"] == "/approvals/"


def test_wrong_method_is_405(logged_in, alice):
    assert logged_in(alice).post("/approvals/").status_code == 405


def test_a_reviewer_sees_the_packets_they_may_view_most_urgent_first(logged_in, alice, packet_for):
    later = packet_for(execution__thread_id="later-1")
    sooner = packet_for(execution__thread_id="sooner-1")
    PausePacket.objects.filter(id=sooner.id).update(
        expires_at=later.expires_at - timedelta(hours=1)
    )
    html = logged_in(alice).get("/approvals/").content.decode()
    assert html.index("sooner-1") < html.index("later-1")


def test_an_outsider_sees_an_empty_queue_that_says_what_will_appear(logged_in, charlie, packet_for):
    packet_for(execution__thread_id="secret-thread")
    html = logged_in(charlie).get("/approvals/").content.decode()
    assert "secret-thread" not in html
    assert "Nothing here" in html and "appears here" in html


def test_filters_and_search_narrow_the_queue(logged_in, alice, packet_for):
    packet_for(execution__thread_id="hr-1", action__tool="iam.grant")
    packet_for(
        execution__thread_id="pay-1", execution__workflow="payments", action__tool="payments.send"
    )
    client = logged_in(alice)
    assert "pay-1" not in client.get("/approvals/?workflow=hr-onboarding").content.decode()
    searched = client.get("/approvals/?q=payments.se").content.decode()
    assert "pay-1" in searched and "hr-1" not in searched
    assert "hr-1" in client.get("/approvals/?q=HR-").content.decode()


def test_status_tabs_count_and_filter(logged_in, alice, packet_for):
    open_packet = packet_for(execution__thread_id="open-1")
    closed = packet_for(execution__thread_id="closed-1")
    packet_reject(packet_id=closed.id, user=alice)
    client = logged_in(alice)
    open_html = client.get("/approvals/").content.decode()
    assert "open-1" in open_html and "closed-1" not in open_html
    rejected = client.get("/approvals/?status=rejected").content.decode()
    assert "closed-1" in rejected and "open-1" not in rejected
    assert 'data-status-count="rejected">1<' in open_html
    assert str(open_packet.id) in open_html


def test_htmx_gets_only_the_queue_fragment(logged_in, alice, packet_for, htmx):
    packet_for()
    response = logged_in(alice).get("/approvals/", headers=htmx)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="queue"')
    assert "<html" not in html


def test_unknown_filters_fall_back_safely(logged_in, alice, packet_for):
    packet_for()
    response = logged_in(alice).get("/approvals/?status=bogus&page=999999&q=" + "x" * 500)
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/approvals/", "/approvals/?status=all&page=2"])
@pytest.mark.parametrize("packets", [3, 30])
def test_the_queue_costs_the_same_queries_however_long(
    logged_in, alice, packet_for, packets, path, read_path
):
    for index in range(packets):
        packet_for(execution__thread_id=f"t-{index}")
    client = logged_in(alice)
    client.get("/approvals/")  # warm the session and permission caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    # session, user, how many grants the user holds, the status counts (which give the page
    # count), the page, its votes, and the user's and groups' global permissions (the top bar
    # links Audit only for auditors)
    assert len(queries) == 8, "\n".join(q["sql"] for q in queries.captured_queries)


def test_the_open_count_fragment_counts_what_the_user_may_see(client, alice, charlie, packet_for):
    packet_for()
    assert client.get("/approvals/open-count/").status_code == 302
    client.force_login(alice)
    assert client.get("/approvals/open-count/").content.decode().strip() == "1"
    client.force_login(charlie)
    assert client.get("/approvals/open-count/").content.decode().strip() == "0"


def test_the_top_bar_links_audit_only_for_auditors(client, alice, make_user):
    from django.contrib.auth.models import Permission

    client.force_login(alice)
    html = client.get("/approvals/").content.decode()
    assert 'href="/metrics/"' in html and 'href="/audit/"' not in html
    erin = make_user("erin")
    erin.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(erin)
    assert 'href="/audit/"' in client.get("/approvals/").content.decode()


def test_each_row_shows_the_votes_that_count_of_those_needed(
    logged_in, alice, bob, packet_for, policy
):
    policy("privileged-iam", match={"tool": "iam.*"}, required_approvals=2)
    packet = packet_for(execution__thread_id="quorum-1")
    packet_approve(packet_id=packet.id, user=bob)
    html = logged_in(alice).get("/approvals/").content.decode()
    row = html[html.index("quorum-1") :]
    assert "1 of 2" in row[: row.index("</tr>")]


@pytest.mark.parametrize("name", ["q", "workflow", "owner", "policy"])
@pytest.mark.parametrize(
    ("raw", "why"),
    [("a%00b", "NUL character"), ("x" * 201, "at most 200 characters")],
)
def test_a_filter_that_can_match_nothing_is_ignored_with_a_message(
    logged_in, alice, packet_for, name, raw, why
):
    packet_for(execution__thread_id="still-shown")
    response = logged_in(alice).get(f"/approvals/?{name}={raw}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "still-shown" in html
    assert why in html and "This filter was ignored." in html


def test_an_ignored_filter_leaves_the_others_in_force(logged_in, alice, packet_for):
    packet_for(execution__thread_id="hr-1")
    packet_for(execution__thread_id="pay-1", execution__workflow="payments")
    html = logged_in(alice).get("/approvals/?workflow=payments&q=%00").content.decode()
    assert "pay-1" in html and "hr-1" not in html and "Search: Contains a NUL" in html
