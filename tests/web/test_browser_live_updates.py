"""The queue and packet pages update by themselves in real Chromium, pushed by server-sent
events from an ASGI web node (gunicorn with uvicorn workers, as docs/deployment.md runs it),
and the node's streams end at once when it is told to stop.
"""

import http.client
import os
import re
import signal
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from playwright.sync_api import expect

from approvals.models import PausePacket
from approvals.services.service_accounts import service_account_create
from tests.background.processes import WebNode, database_url, stop_all, wait_until
from tests.conftest import gate_body
from tests.web.browser import Browsing

pytestmark = pytest.mark.django_db(transaction=True)

# Well under the pages' own refresh (every 10 s): an update this soon came by the stream.
PUSHED = 7_000
# Records what made htmx fetch each fragment, and when the pages' event streams opened.
WATCH = """
window.gatekeeperTriggers = [];
window.gatekeeperStreams = 0;
document.addEventListener("htmx:beforeRequest", (event) => {
  const cause = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
  window.gatekeeperTriggers.push(cause ? cause.type : "none");
});
document.addEventListener("htmx:sseOpen", () => { window.gatekeeperStreams += 1; });
"""


@pytest.fixture
def asgi_node(transactional_db, tmp_path):
    """An ASGI web node on the test database, serving its static files (DEBUG, as the demo)."""
    nodes = []

    def start(graceful: int = 2) -> WebNode:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,  # sessions made here are valid there
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        node = WebNode(f"asgi-{len(nodes)}", env, tmp_path, asgi=True, graceful=graceful)
        nodes.append(node)
        node.wait_ready()
        return node

    yield start
    stop_all(nodes)
    for node in nodes:
        print(f"--- {node.name} log (tail) ---\n{node.log()[-4000:]}")


@pytest.fixture
def on_node(chromium, request):
    """Browser pages on a node; fails the test on any console error, page error or dialog."""
    sessions = []

    def browse(node: WebNode) -> Browsing:
        session = Browsing(chromium=chromium, base_url=f"http://127.0.0.1:{node.port}")
        sessions.append(session)
        return session

    yield browse
    for session in sessions:
        session.close()
        assert not session.dialogs, session.dialogs
        assert not session.errors, "errors in the browser:\n" + "\n".join(session.errors)


def _watched(browsing: Browsing, user, path: str):
    page = browsing.page(user)
    page.context.add_init_script(WATCH)
    page.goto(path)
    # Polled from here: wait_for_function evaluates a string, which the pages' CSP forbids.
    wait_until(lambda: page.evaluate("window.gatekeeperStreams") > 0, timeout=10, what="SSE")
    return page


def test_a_reviewers_queue_shows_a_new_packet_without_reload(asgi_node, on_node, alice):
    node = asgi_node()
    _account, token = service_account_create(name="orchestrator")
    page = _watched(on_node(node), alice, "/approvals/")
    expect(page.locator("#queue")).to_contain_text("Nothing here")
    started = page.evaluate("performance.now()")

    status, _ = node.api("POST", "/api/v1/gate", token, gate_body(execution__thread_id="pushed-1"))
    assert status == 200

    expect(page.locator("#queue tr[data-row]")).to_have_count(1, timeout=PUSHED)
    expect(page.locator("#queue")).to_contain_text("pushed-1")
    expect(page.locator("[data-open-count]")).to_have_text("1", timeout=PUSHED)
    assert "sse:queue" in page.evaluate("window.gatekeeperTriggers")
    assert page.evaluate("performance.now()") - started < PUSHED


def test_the_packet_page_updates_when_another_reviewer_decides(
    asgi_node, on_node, alice, bob, gate
):
    node = asgi_node()
    packet_id = gate(execution__thread_id="decided-elsewhere")["approval"]["id"]
    browsing = on_node(node)
    watching = _watched(browsing, bob, f"/approvals/{packet_id}/")
    deciding = _watched(browsing, alice, f"/approvals/{packet_id}/")
    expect(watching.locator("#decision")).to_contain_text("pending")

    deciding.get_by_role("button", name="Approve").click()
    expect(deciding.locator("#decision [data-outcome]")).to_have_text(
        "Approved: the orchestrator may run the step."
    )

    expect(watching.locator("#decision")).to_contain_text("✓ approved", timeout=PUSHED)
    expect(watching.locator("#decision dt:text-is('Decided by') + dd")).to_have_text("alice")
    assert "sse:packet" in watching.evaluate("window.gatekeeperTriggers")
    assert PausePacket.objects.get(id=packet_id).status == "approved"
    # The decider's own card already shows the decision: the event fetches nothing there, and
    # the outcome it was told stays on screen.
    time.sleep(1)
    expect(deciding.locator("#decision [data-outcome]")).to_be_visible()
    assert "sse:packet" not in deciding.evaluate("window.gatekeeperTriggers")


def test_open_streams_end_at_once_when_the_node_is_told_to_stop(asgi_node, alice):
    node = asgi_node(graceful=30)
    client = Client()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    stream = http.client.HTTPConnection("127.0.0.1", node.port, timeout=20)
    stream.request("GET", "/approvals/events/", headers={"Cookie": cookie})
    answer = stream.getresponse()
    assert answer.status == 200
    assert answer.readline().startswith(b"retry: ")

    told = time.monotonic()
    node.send(signal.SIGTERM)
    rest = answer.read()  # to the stream's end
    ended_after = time.monotonic() - told
    node.process.wait(timeout=20)
    stopped_after = time.monotonic() - told
    assert not re.search(rb"^event:", rest, re.MULTILINE)
    assert ended_after < 5, f"the stream ended {ended_after:.1f} s after SIGTERM"
    assert stopped_after < 10, f"the node stopped {stopped_after:.1f} s after SIGTERM"
    assert node.process.returncode == 0
