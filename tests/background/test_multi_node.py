"""Several machines' worth of Gatekeeper as processes: two gunicorn web nodes and two Celery
workers on one PostgreSQL and one Redis (docs/deployment.md). Nothing is shared in memory, so
whatever one node does, the others see through the database and the broker.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from approvals.models import OutboxMessage
from approvals.services.service_accounts import service_account_create
from audit.models import AuditEvent
from tests.background.processes import wait_until
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 20


def _listening_long_polls() -> int:
    """Sessions parked in a long-poll: LISTENing, their status re-read, waiting for NOTIFY."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'idle' AND query LIKE 'SELECT status FROM approvals_pausepacket%%'"
        )
        return cursor.fetchone()[0]


def _approve_in_browser(node, user, approval_id: str) -> int:
    """Open the packet page on `node` as `user`, and press Approve (a plain form post)."""
    browser = Client()
    browser.force_login(user)  # a session row in the shared database, valid on every node
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    status, headers, page = node.request(
        "GET", f"/approvals/{approval_id}/", headers={"Cookie": f"sessionid={session}"}
    )
    assert status == 200, page[:500]
    cookies = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, headers, _ = node.request(
        "POST",
        f"/approvals/{approval_id}/approve/",
        body=urlencode({"csrfmiddlewaretoken": form_token.decode(), "comment": "fine"}).encode(),
        headers={
            "Cookie": f"sessionid={session}; csrftoken={cookies['csrftoken'].value}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"https://127.0.0.1:{node.port}",  # what a browser sends with a form post
        },
    )
    assert headers.get("Location", "").endswith(f"/approvals/{approval_id}/")
    return status


def test_two_web_nodes_and_two_workers_share_one_database_and_one_broker(
    start_web_node, start_worker, smtp_sink, webhook_receiver, alice
):
    node_a = start_web_node("web-a", wait=False)
    node_b = start_web_node("web-b", wait=False)
    workers = [start_worker("worker-a", wait=False), start_worker("worker-b", wait=False)]
    for process in (node_a, node_b, *workers):
        process.wait_ready()
    account, token = service_account_create(name="orchestrator", callback_url=webhook_receiver.url)
    webhook_receiver.secret = account.webhook_secret

    # The orchestrator gates a step through node A's API; a worker emails the reviewer.
    status, gated = node_a.api("POST", "/api/v1/gate", token, gate_body())
    assert status == 200 and gated["decision"] == "require_approval", gated
    approval_id = gated["approval"]["id"]
    (mail,) = smtp_sink.wait_for(lambda m: m, TIMEOUT, "the reviewer's email")
    assert mail["to"] == ["alice@example.com"] and approval_id in mail["text"]

    # It long-polls node B while the reviewer decides on node A.
    with ThreadPoolExecutor(max_workers=1) as pool:
        poll = pool.submit(node_b.api, "GET", f"/api/v1/approvals/{approval_id}?wait=25", token)
        wait_until(_listening_long_polls, timeout=TIMEOUT, what="node B's long-poll to listen")
        assert _approve_in_browser(node_a, alice, approval_id) == 303
        approved = time.monotonic()
        status, polled = poll.result(timeout=60)
        woke_after = time.monotonic() - approved
    assert status == 200 and polled["status"] == "approved" and polled["decision"] == "allow"
    # Far below the 25 s it asked to wait (its HTTP client gives up at 30): woken by NOTIFY.
    assert woke_after < 15, f"node B answered {woke_after:.1f} s after: it slept out its wait"

    # One of the two workers posts the decision; the receiver sees it exactly once.
    (hook,) = webhook_receiver.wait_for(lambda h: h, TIMEOUT, "the decision's webhook")
    assert hook["event"] == "approval.decided" and hook["body"]["approval"]["id"] == approval_id
    wait_until(
        lambda: not OutboxMessage.objects.exclude(status="sent").exists(),
        timeout=TIMEOUT,
        what="the outbox to drain",
    )
    webhook = OutboxMessage.objects.get(kind="webhook")
    assert webhook.attempts == 1 and hook["delivery"] == str(webhook.id)
    assert webhook_receiver.duplicates.items == [] and len(webhook_receiver.items) == 1
    assert AuditEvent.objects.filter(kind="webhook.delivered").count() == 1
    assert all(process.alive for process in (node_a, node_b, *workers))


def _listen_sessions() -> int:
    """The ASGI nodes' LISTEN connections: one per process, whatever the number of waiters."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN gatekeeper_packets'"
        )
        return cursor.fetchone()[0]


def test_agents_waiting_on_two_asgi_nodes_wake_when_reviewers_decide_on_either(
    start_web_node, alice
):
    from approvals.services.review import packet_approve

    node_a = start_web_node("web-a", wait=False, asgi=True)
    node_b = start_web_node("web-b", wait=False, asgi=True)
    for node in (node_a, node_b):
        node.wait_ready()
    _account, token = service_account_create(name="orchestrator")
    agents = 40
    approvals = []
    for i in range(agents):
        status, gated = node_a.api(
            "POST", "/api/v1/gate", token, gate_body(execution__thread_id=f"agent-{i}")
        )
        assert status == 200, gated
        approvals.append(gated["approval"]["id"])

    # Half the agents wait on node A, half on node B; each node listens once for all of them.
    nodes = [node_a if i % 2 else node_b for i in range(agents)]
    with ThreadPoolExecutor(max_workers=agents) as pool:
        started = time.monotonic()
        polls = [
            pool.submit(node.api, "GET", f"/api/v1/approvals/{approval_id}?wait=25", token)
            for node, approval_id in zip(nodes, approvals, strict=True)
        ]
        wait_until(lambda: _listen_sessions() == 2, timeout=TIMEOUT, what="both nodes to LISTEN")
        time.sleep(1)  # the last polls reach their node
        # Reviewers decide every other one: by the browser on node A, by the service here.
        assert _approve_in_browser(node_a, alice, approvals[0]) == 303
        for approval_id in approvals[2::2]:
            packet_approve(packet_id=approval_id, user=alice)
        answers = [poll.result(timeout=40) for poll in polls[::2]]
        woke_after = time.monotonic() - started
        assert _listen_sessions() == 2
        undecided = [poll.result(timeout=40) for poll in polls[1::2]]
    assert all(status == 200 and a["status"] == "approved" for status, a in answers), answers
    assert woke_after < 20, f"the decided ones answered after {woke_after:.1f} s"
    assert all(status == 200 and a["status"] == "pending" for status, a in undecided)
    assert all(node.alive for node in (node_a, node_b))
