"""/audit/: the decision record, filtered and paged by keyset, for audit.view_auditevent holders."""

import re
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from approvals.events import EventKind
from approvals.models import Execution
from audit import selectors
from audit.models import AuditEvent
from audit.selectors import browse
from audit.services import Event, record_events
from gatekeeper.auth_audit import AuthEvent


@pytest.fixture
def auditor(make_user):
    """A user holding the global audit.view_auditevent permission (not a superuser)."""
    user = make_user("erin")
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return user


@pytest.fixture
def record(db):
    """Append events through the service; `at` pins their time, `count` repeats one event."""

    def append(
        kind=EventKind.POLICY_CHANGED,
        *,
        actor="user:alice",
        data=None,
        execution_id=None,
        at: datetime | None = None,
        count: int = 1,
    ) -> list[AuditEvent]:
        batch = [
            Event(
                kind,
                actor=actor,
                data={"n": n} if data is None else data,
                execution_id=execution_id,
            )
            for n in range(count)
        ]
        with transaction.atomic():
            if at is None:
                return record_events(batch)
            with mock.patch("django.utils.timezone.now", return_value=at):
                return record_events(batch)

    return append


def _seqs(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<td class="num">(\d+)</td>', html)]


def all_pages(client, query="") -> list[str]:
    """Each page of /audit/ from the first, following the "Older" links to the end."""
    pages = [_get(client, query)]
    while older := re.search(r'href="\?([^"]+)" rel="next"', pages[-1]):
        pages.append(_get(client, "?" + older.group(1).replace("&amp;", "&")))
    return pages


def _get(client, query="") -> str:
    response = client.get("/audit/" + query)
    assert response.status_code == 200
    return response.content.decode()


def test_anonymous_visitors_go_to_login(client, db):
    response = client.get("/audit/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_users_without_the_audit_permission_get_404(client, alice, charlie):
    for user in (alice, charlie):
        client.force_login(user)
        assert client.get("/audit/").status_code == 404


def test_auditors_and_superusers_may_read_it(client, auditor, make_user, record):
    record()
    client.force_login(auditor)
    assert "policy.changed" in _get(client)
    client.force_login(make_user("root", is_superuser=True))
    assert "policy.changed" in _get(client)


def test_wrong_method_is_405(client, auditor):
    client.force_login(auditor)
    assert client.post("/audit/").status_code == 405


def test_rows_are_newest_first_and_link_to_their_execution(client, auditor, gate):
    gate(step__index=1)
    gate(step__index=2)
    execution = Execution.objects.get()
    seqs = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True))
    client.force_login(auditor)
    html = _get(client)
    assert _seqs(html) == seqs
    assert f'href="/executions/{execution.id}/#seq-{seqs[0]}">onboard-42</a>' in html
    assert "Step 2 (set_privileges): iam.grant sent for approval" in html


def test_filters_narrow_the_record(client, auditor, gate, policy, record):
    policy("pay", effect="allow", match={"workflow": "payments"})
    gate(execution__thread_id="pay-7", execution__workflow="payments")
    gate(execution__thread_id="hr-1")
    record(AuthEvent.AUTH_LOGIN, actor="user:dora", data={"note": "100% sure_thing"})
    record(AuthEvent.AUTH_LOGIN, actor="service:agent")
    pay = Execution.objects.get(thread_id="pay-7")
    client.force_login(auditor)

    def kinds_and_actors(query):
        return [
            (event.kind, event.actor)
            for event in AuditEvent.objects.filter(id__in=_seqs(_get(client, query)))
        ]

    assert set(kinds_and_actors("?kind=auth.login")) == {
        ("auth.login", "user:dora"),
        ("auth.login", "service:agent"),
    }
    # A bare name is a user; other actors are named in full.
    assert kinds_and_actors("?actor=dora") == [("auth.login", "user:dora")]
    assert kinds_and_actors("?actor=service:agent&kind=auth.login") == [
        ("auth.login", "service:agent")
    ]
    workflow = _seqs(_get(client, "?workflow=payments"))
    assert workflow and set(workflow) == set(
        AuditEvent.objects.filter(execution_id=pay.id).values_list("id", flat=True)
    )
    # q: a piece of a thread id, case-insensitive, or of the event's text; % and _ are literal.
    assert set(_seqs(_get(client, "?q=PAY-"))) == set(workflow)
    assert kinds_and_actors("?q=100%25 sure_") == [("auth.login", "user:dora")]
    assert _seqs(_get(client, "?q=100_ sure")) == []
    assert _seqs(_get(client, "?kind=auth.login&actor=alice")) == []


def test_since_and_until_take_dates_and_times_in_utc(client, auditor, record):
    early = record(at=datetime(2026, 11, 20, 23, 59, tzinfo=UTC))
    noon = record(at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    late = record(at=datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=UTC))
    after = record(at=datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    client.force_login(auditor)

    def seqs(query):
        return set(_seqs(_get(client, query)))

    day = {noon[0].id, late[0].id}
    assert seqs("?since=2026-11-21&until=2026-11-21") == day
    assert seqs("?since=2026-11-21T00:00&until=2026-11-21 23:59:59.999999") == day
    assert seqs("?until=2026-11-21 12:00") == {early[0].id, noon[0].id}
    assert seqs("?since=2026-11-21 14:00%2B02:00") == {noon[0].id, late[0].id, after[0].id}
    assert seqs("?since=2026-11-22") == {after[0].id}


@pytest.mark.parametrize(
    "query, message",
    [
        ("?since=yesterday", "Since: Enter a date like 2026-11-23"),
        ("?until=2026-13-40", "Until: Enter a date like 2026-11-23"),
        ("?until=9999-12-31", "Until: Enter a date like 2026-11-23"),
        ("?since=2026-11-22&until=2026-11-21", "“Since” must come before “until”."),
        ("?kind=packet.exploded", "Kind: Select a valid choice."),
        ("?before=abc", "Before: Enter a whole number."),
        ("?q=" + "x" * 201, "Search: Ensure this value has at most 200 characters"),
        ("?actor=a%00b", "Actor: Contains a NUL character."),
    ],
)
def test_bad_filters_are_form_errors_on_the_page(client, auditor, record, query, message):
    record()
    client.force_login(auditor)
    html = _get(client, query)
    assert "Nothing is shown: fix the filters first." in html
    assert message in html.replace("&#x27;", "'")
    assert _seqs(html) == []


def test_pages_follow_the_keyset_both_ways(client, auditor, record, monkeypatch):
    monkeypatch.setattr(browse, "BROWSE_PAGE_SIZE", 3)
    record(count=4)
    record(AuthEvent.AUTH_LOGIN, count=4)
    newest_first = list(AuditEvent.objects.order_by("-at", "-id").values_list("id", flat=True))
    client.force_login(auditor)
    pages = all_pages(client, "?actor=alice")
    assert [seq for page in pages for seq in _seqs(page)] == newest_first and len(pages) == 3
    assert all("?actor=alice&amp;before=" in page for page in pages[:-1])
    assert 'rel="prev"' not in pages[0]
    newer = re.search(r'href="\?([^"]+)" rel="prev"', pages[-1]).group(1)
    assert _seqs(_get(client, "?" + newer.replace("&amp;", "&"))) == newest_first[3:6]


def test_pages_cost_the_same_queries_however_long_the_record(client, auditor, gate, record):
    gate()
    client.force_login(auditor)

    def count(query) -> int:
        client.get("/audit/" + query)  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/audit/" + query).status_code == 200
        return len(queries)

    queries = ["", "?q=onboard", "?kind=gate.checked&workflow=hr-onboarding", "?before=999999"]
    small = [count(query) for query in queries]
    record(count=3000)
    gate(step__index=4)
    assert [count(query) for query in queries] == small


def test_the_page_reads_its_rows_in_one_query(auditor, record):
    record(count=300)
    with CaptureQueriesContext(connection) as queries:
        page = selectors.audit_events_page(filters=selectors.AuditFilters(actor="user:alice"))
    assert len(page.entries) == browse.BROWSE_PAGE_SIZE
    # SAVEPOINT, the statement timeout, the rows, RELEASE.
    assert len(queries) == 4, "\n".join(q["sql"] for q in queries.captured_queries)
    assert "OFFSET" not in queries[2]["sql"] and "COUNT(" not in queries[2]["sql"].upper()


def test_a_text_search_that_runs_too_long_searches_thread_ids_only(
    client, auditor, gate, record, monkeypatch
):
    gate(execution__thread_id="needle-1")
    record(count=5000, data={"text": "hay " * 20})
    # One millisecond: scanning the text of 5,000 events takes longer.
    monkeypatch.setattr(browse, "TEXT_SEARCH_TIMEOUT_MS", 1)
    client.force_login(auditor)
    html = _get(client, "?q=needle")
    assert "only thread ids were searched" in html
    execution = Execution.objects.get()
    assert set(_seqs(html)) == set(
        AuditEvent.objects.filter(execution_id=execution.id).values_list("id", flat=True)
    )
    # The next pages and the export search the same way.
    assert "search=threads" in re.search(r'href="(/audit/export.csv[^"]*)"', html).group(1)


def test_a_page_that_still_runs_too_long_says_so(client, auditor, monkeypatch):
    def too_slow(**kwargs):
        raise selectors.SearchTooSlow

    monkeypatch.setattr(selectors, "audit_events_page", too_slow)
    client.force_login(auditor)
    html = _get(client, "?q=needle")
    assert "The search took too long." in html and _seqs(html) == []


def test_the_export_link_carries_the_filters(client, auditor, record):
    record()
    client.force_login(auditor)
    html = _get(client, "?kind=policy.changed&since=2026-01-01&before=99")
    link = re.search(r'<a href="([^"]+)" class="button" data-export', html).group(1)
    assert link == "/audit/export.csv?kind=policy.changed&amp;since=2026-01-01"


def test_agent_text_stays_inert(client, auditor, record):
    record(data={"comment": "<script>alert(1)</script>"}, actor="<b>x</b>")
    client.force_login(auditor)
    html = _get(client)
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_htmx_gets_only_the_results_fragment(client, auditor, record):
    record()
    client.force_login(auditor)
    html = client.get("/audit/?kind=policy.changed", headers={"HX-Request": "true"}).content
    assert html.decode().lstrip().startswith('<section id="results"')
    assert b"<html" not in html
