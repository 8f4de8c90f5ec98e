"""/executions/<uuid>/: an execution's decision record as a timeline, gaps flagged in place."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.events import EventKind
from approvals.gate_request import ContextInput
from approvals.models import Execution, PausePacket
from approvals.selectors import executions, timeline
from approvals.selectors.executions import execution_steps
from approvals.services.executions import (
    execution_change_owner,
    packet_refresh,
    step_record_outcome,
)
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import (
    packet_approve,
    packet_comment,
    packet_reconcile,
    packet_reject,
    packet_take_over,
)
from audit import selectors
from audit.models import AuditEvent
from audit.services import Event, record_events
from tests.audit import test_audit_browser

# Shared with the browser's tests (tests/audit has no conftest.py of its own).
auditor = test_audit_browser.auditor

FRESH = (
    ContextInput(name="employee_record", value={"id": 7}, observed_at="2026-11-23T10:00:00+00:00"),
)


def _url(execution) -> str:
    return f"/executions/{execution.id}/"


def _page(client, execution, query="") -> str:
    response = client.get(_url(execution) + query)
    assert response.status_code == 200
    return response.content.decode()


def _outcome(agent, step, side_effect="landed", thread_id="onboard-42"):
    step_record_outcome(
        service_account=agent,
        thread_id=thread_id,
        step_index=step,
        side_effect=side_effect,
        detail={"rows": 1},
    )


@pytest.fixture
def full_record(gate, packet_for, policy, agent, alice, bob, make_user):
    """onboard-42 with every kind of entry, made through the services.

    Gated steps 0, 1, 3, 4, 5, 6 and 8, so 2 and 7 were skipped; step 1 was approved with no
    outcome; an outcome arrived for step 9, which was never gated.
    """
    make_user("lee", "it-leads")
    policy("reads", effect="allow", priority=5, match={"tool": "db.*"})
    policy("iam", priority=10, match={"tool": "iam.*"}, allow_edit=True, required_approvals=2)
    gate(step__index=0, step__name="read_record", action__tool="db.read")
    _outcome(agent, 0)

    first = packet_for(step__index=1, step__name="grant")
    packet_comment(packet_id=first.id, user=alice, comment="checking with HR")
    packet_approve(packet_id=first.id, user=alice, edited_args={"user": "new.hire", "role": "dev"})
    packet_approve(packet_id=first.id, user=bob, comment="fine")

    rejected = packet_for(step__index=3, action__tool="iam.revoke")
    packet_reject(packet_id=rejected.id, user=bob, comment="not today")

    uncertain = packet_for(step__index=4, action__side_effect="indeterminate")
    packet_approve(packet_id=uncertain.id, user=alice)
    packet_reconcile(packet_id=uncertain.id, user=alice, happened=True)

    late = packet_for(step__index=5)
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=late.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )
    packets_expire_overdue()

    stale = packet_for(step__index=6)
    PausePacket.objects.filter(id=stale.id).update(fresh_until=past)
    packet_approve(packet_id=stale.id, user=alice)
    packet_refresh(service_account=agent, packet_id=stale.id, context=FRESH)
    execution_change_owner(
        service_account=agent, thread_id="onboard-42", owner="it-leads", reason="hand-off"
    )

    taken = packet_for(step__index=8)
    packet_take_over(packet_id=taken.id, user=alice, comment="mine now")
    _outcome(agent, 9)
    with transaction.atomic():
        record_events(
            [
                Event(
                    EventKind.WEBHOOK_DELIVERED,
                    actor="system",
                    execution_id=first.execution_id,
                    packet_id=first.id,
                    data={"topic": "approval.decided", "to": "https://agent.example/hook"},
                ),
                Event(
                    EventKind.NOTIFICATION_SENT,
                    actor="system",
                    execution_id=first.execution_id,
                    packet_id=first.id,
                    data={"topic": "new_packet", "to": "bob"},
                ),
            ]
        )
    return Execution.objects.get(thread_id="onboard-42")


def test_anonymous_visitors_go_to_login(client, packet_for):
    response = client.get(_url(packet_for().execution))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_outsiders_and_unknown_executions_get_404(client, charlie, packet_for):
    execution = packet_for().execution
    client.force_login(charlie)
    assert client.get(_url(execution)).status_code == 404
    assert client.get(f"/executions/{uuid.uuid4()}/").status_code == 404


def test_wrong_method_is_405(client, alice, packet_for):
    client.force_login(alice)
    assert client.post(_url(packet_for().execution)).status_code == 405


def test_a_reviewer_with_a_packet_grant_may_read_it(client, alice, packet_for):
    client.force_login(alice)
    assert "onboard-42" in _page(client, packet_for().execution)


def test_an_auditor_may_read_any_execution(client, auditor, packet_for, policy):
    policy("finance", match={"workflow": "payments"}, approvers="finance-approvers")
    execution = packet_for(execution__workflow="payments").execution
    client.force_login(auditor)
    html = _page(client, execution)
    assert "payments" in html
    assert '<a href="/audit/">Decision record</a> › Execution' in html


def test_members_of_the_owning_group_and_the_owning_user_may_read_it(
    client, gate, policy, make_user, charlie
):
    # Allowed steps make no packet, so only ownership can grant access here.
    policy("all", effect="allow")
    dave, dora = make_user("dave", "it-approvers"), make_user("dora")
    gate(execution__thread_id="by-group", execution__owner="it-approvers")
    gate(execution__thread_id="by-user", execution__owner="user:dora")
    by_group = Execution.objects.get(thread_id="by-group")
    by_user = Execution.objects.get(thread_id="by-user")
    client.force_login(dave)
    assert "by-group" in _page(client, by_group)
    assert client.get(_url(by_user)).status_code == 404
    client.force_login(dora)
    assert "by-user" in _page(client, by_user)
    assert client.get(_url(by_group)).status_code == 404
    client.force_login(charlie)
    assert client.get(_url(by_group)).status_code == 404


def test_a_group_named_like_a_service_owner_grants_nothing(client, gate, policy, make_user):
    policy("all", effect="allow")
    gate(execution__owner="service:agent")
    client.force_login(make_user("sly", "service:agent"))
    assert client.get(_url(Execution.objects.get())).status_code == 404


EXPECTED_WORDS = {
    "gate.checked": [
        "Step 0 (read_record): db.read allowed by policy reads v1",
        "Step 1 (grant): iam.grant sent for approval by policy iam v1",
    ],
    "packet.created": ["Approval requested for step 1 (iam.grant): 2 approvals needed"],
    "packet.commented": ["Comment: “checking with HR”"],
    "packet.edited": ["Args edited before approving: changed role"],
    "packet.voted": ["Vote to approve: 1 of 2", "Vote to approve: 2 of 2: “fine”"],
    "packet.approved": ["Approved by alice, bob: the step may run"],
    "packet.rejected": ["Rejected by bob: the step is blocked: “not today”"],
    "packet.reconciling": ["Sent to reconcile: the write may already have happened"],
    "packet.applied": ["Reconciled by alice: the write happened, so the step is skipped"],
    "step.outcome": [
        "Outcome of step 0: the write happened",
        "Outcome of step 4: the write happened (recorded by a reviewer reconciling it)",
        "Outcome of step 9: the write happened; this step was never gated",
    ],
    "packet.expired": ["Expired: nobody decided before the deadline, so the step is blocked"],
    "packet.re_review": ["Sent back for re-review: the context went stale"],
    "packet.superseded": ["Superseded: replaced by a new approval with fresh context"],
    "execution.owner_changed": ["Owner changed from reviewers to it-leads: “hand-off”"],
    "packet.terminated": [
        "Terminated (owner changed to it-leads): the step is blocked",
        "Terminated (taken over by alice): the step is blocked",
    ],
    "execution.taken_over": ["Taken over: user:alice now owns the execution (was it-leads)"],
    "notification.queued": ["Notification “new_packet” queued for alice, bob"],
    "notification.sent": ["Notification “new_packet” sent to bob"],
    "webhook.delivered": ["Webhook approval.decided delivered to https://agent.example/hook"],
}


def test_every_kind_of_entry_reads_in_words_with_its_details(client, auditor, full_record):
    client.force_login(auditor)
    html = _page(client, full_record)
    kinds = set(
        AuditEvent.objects.filter(execution_id=full_record.id).values_list("kind", flat=True)
    )
    assert kinds == set(EXPECTED_WORDS)
    for kind, phrases in EXPECTED_WORDS.items():
        assert f'<code class="kind">{kind}</code>' in html, kind
        for phrase in phrases:
            assert phrase in html, phrase
    events = AuditEvent.objects.filter(execution_id=full_record.id)
    for event in events:
        assert f'id="seq-{event.id}"' in html
    assert html.count("<details>") == events.count()
    # Details are the payload as indented JSON, escaped.
    assert "&quot;idempotency_key&quot;: " in html
    assert "&quot;diff&quot;: {" in html


def test_each_entry_says_when_and_who(client, auditor, full_record):
    client.force_login(auditor)
    html = _page(client, full_record)
    rejected = AuditEvent.objects.get(execution_id=full_record.id, kind="packet.rejected")
    entry = html[html.index(f'id="seq-{rejected.id}"') :]
    entry = entry[: entry.index("</li>")]
    assert f'datetime="{rejected.at.isoformat()}"' in entry
    assert '<span class="actor">user:bob</span>' in entry


def test_every_gap_kind_is_flagged_in_place_and_summed_up_at_the_top(client, auditor, full_record):
    client.force_login(auditor)
    html = _page(client, full_record)
    summary = html[
        html.index('id="gaps-title"') : html.index("</section>", html.index("gaps-title"))
    ]
    assert "4 gaps in this record" in summary
    texts = [
        "Step 1 was allowed but no outcome was recorded",
        "Step 2 was never gated, though steps before and after it were",
        "Step 7 was never gated, though steps before and after it were",
        "An outcome was recorded for step 9, which was never gated",
    ]
    for text in texts:
        assert text in summary
        assert f"<strong>⚠ Gap:</strong> {text}." in html

    def position(kind, **data):
        events = AuditEvent.objects.filter(execution_id=full_record.id, kind=kind, **data)
        return html.index(f'id="seq-{events.order_by("id").first().id}"')

    def gap(step, kind):
        return html.index(f'id="gap-{full_record.id}-{step}-{kind}"')

    approved = position("packet.approved")
    assert approved < gap(1, "no_outcome") < position("gate.checked", data__step=3)
    assert (
        position("packet.voted") < gap(2, "skipped_index") < position("gate.checked", data__step=3)
    )
    assert gap(7, "skipped_index") < position("gate.checked", data__step=8)
    assert position("step.outcome", data__step=9) < gap(9, "ungated")


def test_the_page_finds_the_gaps_the_api_finds(client, auditor, full_record):
    client.force_login(auditor)
    html = _page(client, full_record)
    _, gaps = execution_steps(full_record)
    for gap in gaps:
        assert f'id="gap-{full_record.id}-{gap["step"]}-{gap["kind"]}"' in html


def test_consecutive_skipped_steps_read_as_one_gap(client, alice, gate):
    gate(step__index=0)
    gate(step__index=5)
    client.force_login(alice)
    html = _page(client, Execution.objects.get())
    assert "Steps 1 to 4 were never gated, though steps before and after them were" in html
    assert "1 gap in this record" in html


def test_a_complete_record_says_it_has_no_gaps(client, alice, packet_for):
    client.force_login(alice)
    assert "✓ No gaps" in _page(client, packet_for().execution)


def test_agent_text_stays_inert(client, alice, packet_for):
    packet = packet_for(
        step__name="<img src=x onerror=alert(2)>",
        action__args={"body": "<script>alert(1)</script>"},
    )
    packet_comment(packet_id=packet.id, user=alice, comment="<b>bold</b>")
    client.force_login(alice)
    html = _page(client, packet.execution)
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_packet_entries_link_to_the_packet_for_those_who_may_open_it(
    client, alice, auditor, packet_for
):
    packet = packet_for()
    client.force_login(alice)
    assert f'href="/approvals/{packet.id}/"' in _page(client, packet.execution)
    client.force_login(auditor)
    html = _page(client, packet.execution)
    assert f'href="/approvals/{packet.id}/"' not in html and str(packet.id) in html


@pytest.fixture
def nested(gate, packet_for):
    """onboard-42, with a child run and a grandchild run under it."""
    packet_for()
    packet_for(
        execution__thread_id="onboard-42.laptop",
        execution__parent_thread_id="onboard-42",
        action__tool="it.order_laptop",
    )
    packet_for(
        execution__thread_id="onboard-42.laptop.dock",
        execution__parent_thread_id="onboard-42.laptop",
        action__tool="it.order_dock",
    )
    return {e.thread_id: e for e in Execution.objects.all()}


def test_the_root_page_shows_nested_executions_under_it(client, alice, nested):
    client.force_login(alice)
    html = _page(client, nested["onboard-42"])
    child, grandchild = nested["onboard-42.laptop"], nested["onboard-42.laptop.dock"]
    assert f'Nested: <a href="/executions/{child.id}/">onboard-42.laptop</a>' in html
    assert f'Nested: <a href="/executions/{grandchild.id}/">onboard-42.laptop.dock</a>' in html
    assert "it.order_laptop" in html and "it.order_dock" in html
    # The grandchild's section sits inside the child's.
    child_at = html.index(f'id="exec-{child.id}"')
    assert child_at < html.index(f'id="exec-{grandchild.id}"') < html.rindex("</section>")


def test_a_nested_page_links_up_to_its_root(client, alice, nested):
    client.force_login(alice)
    html = _page(client, nested["onboard-42.laptop.dock"])
    root = nested["onboard-42"]
    assert f'Part of</dt><dd><a href="/executions/{root.id}/">onboard-42</a>' in html
    assert "it.order_laptop" not in html


def test_nesting_deeper_than_the_bound_is_linked_not_expanded(client, alice, nested, monkeypatch):
    monkeypatch.setattr(timeline, "MAX_NESTING", 1)
    client.force_login(alice)
    html = _page(client, nested["onboard-42"])
    grandchild = nested["onboard-42.laptop.dock"]
    assert f'Nested further: <a href="/executions/{grandchild.id}/">' in html
    assert "it.order_dock" not in html


def test_a_nested_execution_the_reader_may_not_view_stays_hidden(
    client, alice, packet_for, policy, make_user
):
    make_user("ivan", "it-approvers")
    policy("laptops", match={"tool": "it.*"}, approvers="it-approvers")
    packet_for()
    packet_for(
        execution__thread_id="secret.child",
        execution__parent_thread_id="onboard-42",
        execution__owner="it-approvers",
        action__tool="it.order_laptop",
    )
    client.force_login(alice)
    html = _page(client, Execution.objects.get(thread_id="onboard-42"))
    assert "A nested execution you may not view." in html
    assert "secret.child" not in html and "it.order_laptop" not in html


def test_a_parent_chain_that_loops_still_renders(client, auditor, nested):
    Execution.objects.filter(thread_id="onboard-42").update(parent=nested["onboard-42.laptop.dock"])
    client.force_login(auditor)
    assert "onboard-42.laptop" in _page(client, nested["onboard-42"])


def test_long_records_page_by_seq_and_gap_links_find_their_page(
    client, auditor, gate, agent, monkeypatch
):
    monkeypatch.setattr(timeline, "TIMELINE_PAGE_SIZE", 3)
    for index in (0, 1, 3):
        gate(step__index=index)
    _outcome(agent, 9)
    execution = Execution.objects.get()
    seqs = list(
        AuditEvent.objects.filter(execution_id=execution.id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    client.force_login(auditor)
    first = _page(client, execution)
    assert [int(s) for s in re.findall(r'id="seq-(\d+)"', first)] == seqs[:3]
    later = re.search(r'href="\?after=(\d+)" rel="next"', first).group(1)
    second = _page(client, execution, f"?after={later}")
    assert [int(s) for s in re.findall(r'id="seq-(\d+)"', second)] == seqs[3:6]
    earlier = re.search(r'href="\?before=(\d+)" rel="prev"', second).group(1)
    assert re.findall(r'id="seq-(\d+)"', _page(client, execution, f"?before={earlier}")) == [
        str(s) for s in seqs[:3]
    ]
    # The summary on the first page links to the page where the ungated outcome stands.
    ungated = f"gap-{execution.id}-9-ungated"
    link = re.search(rf'href="(\?after=\d+)#{ungated}"', first).group(1)
    assert f'id="{ungated}"' in _page(client, execution, link)


def test_htmx_gets_only_the_timeline_fragment(client, alice, packet_for):
    client.force_login(alice)
    response = client.get(_url(packet_for().execution), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="timeline">') and "<html" not in html


def _bulk_events(execution, count):
    with transaction.atomic():
        record_events(
            Event(
                EventKind.STEP_OUTCOME if n % 2 else EventKind.GATE_CHECKED,
                actor="service:agent",
                execution_id=execution.id,
                data={"step": 100 + n, "decision": "allow", "side_effect": "landed"},
            )
            for n in range(count)
        )


def _grow(root, packet_for, agent, *, events, children):
    """More events and nested executions, each with a gap (an outcome of an ungated step)."""
    for _ in range(children):
        thread_id = f"child-{Execution.objects.count()}"
        packet_for(execution__thread_id=thread_id, execution__parent_thread_id="onboard-42")
        _outcome(agent, 50, thread_id=thread_id)
    _bulk_events(root, events)


def test_the_timeline_costs_the_same_queries_however_long(client, alice, packet_for, agent):
    root = packet_for().execution
    _outcome(agent, 9)
    client.force_login(alice)

    def count() -> int:
        client.get(_url(root))  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_url(root)).status_code == 200
        return len(queries)

    small = count()
    _grow(root, packet_for, agent, events=1500, children=4)
    assert count() == small


@pytest.mark.parametrize("events, children", [(5, 1), (1500, 4)])
def test_the_timeline_reads_in_nine_queries(alice, packet_for, agent, events, children):
    root = packet_for().execution
    _outcome(agent, 9)
    _grow(root, packet_for, agent, events=events, children=children)
    with CaptureQueriesContext(connection) as queries:
        # Two of them load the user's permissions, to see whether they may audit everything.
        execution = executions.execution_for_user(user=alice, execution_id=root.id)
        page = timeline.execution_timeline(user=alice, execution=execution)
    assert len(page.section.children) == children
    assert len(queries) == 9, "\n".join(q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize("data", [{}, None, [1, 2], "text", -3, {"decided_by": "x", "diff": 7}])
@pytest.mark.parametrize("kind", EventKind.values)
def test_any_payload_still_reads_as_a_line(kind, data):
    summary = selectors.event_summary(kind, data, step=None)
    assert summary and "\n" not in summary


def test_a_decision_without_names_reads_without_them():
    assert selectors.event_summary("packet.approved", {}) == "Approved: the step may run"
    assert selectors.event_summary("packet.commented", {"comment": "a\n b"}) == "Comment: “a b”"


@pytest.mark.parametrize("cursor", ["before=%C2%B2", "after=%D9%A1", "before=-1", "after=%00"])
def test_a_page_cursor_that_is_no_plain_number_shows_the_newest_page(
    client, alice, packet_for, cursor
):
    packet = packet_for()
    client.force_login(alice)
    response = client.get(f"/executions/{packet.execution_id}/?{cursor}")
    assert response.status_code == 200 and "packet.created" in response.content.decode()
