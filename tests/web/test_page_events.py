"""The reviewers' pages' event stream under ASGI (approvals/page_events.py): who may open one,
which changes each hears, the bound it shares with waiting agents, and its end.

The ASGI application is driven in-process, on a real event loop, against the real database;
changes are committed from threads, as another process would commit them.
"""

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from approvals import page_events, waiters
from approvals.models import PausePacket
from approvals.selectors.packets import decision_state
from approvals.services.review import packet_approve
from tests.asgi import get_scope

pytestmark = pytest.mark.django_db(transaction=True)

SOON = 5  # seconds: an event that comes arrives well within this


@pytest.fixture(scope="module")
def app():
    from gatekeeper.asgi import GatekeeperASGI

    return GatekeeperASGI()


def _session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class Opened:
    """An event stream opened through the ASGI application: its status, headers and events."""

    def __init__(self, app, query: str = "", session: str | None = None, headers=()):
        request_headers = list(headers)
        if session:
            cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
            request_headers.append((b"cookie", cookie.encode()))
        scope = get_scope(page_events.PATH, query, request_headers)
        self.communicator = ApplicationCommunicator(app, scope)
        self.text = ""
        self.ended = False

    async def start(self):
        await self.communicator.send_input({"type": "http.request", "body": b""})
        start = await self.communicator.receive_output(SOON)
        self.status = start["status"]
        self.headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
        return self

    async def read(self, seconds: float) -> str:
        """What the stream sends within `seconds` (or until it ends)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not self.ended and (left := until - loop.time()) > 0:
            # From the queue itself: receive_output's timeout would cancel the application.
            queued = self.communicator.output_queue.get()
            try:
                message = await asyncio.wait_for(queued, left)
            except TimeoutError:
                if self.communicator.future.done():
                    self.communicator.future.result()  # the application's exception
                break
            self.text += message.get("body", b"").decode()
            self.ended = not message.get("more_body", False)
        return self.text

    def events(self) -> list[tuple[str, str]]:
        found = []
        for block in self.text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                found.append((fields["event"], fields.get("data", "")))
        return found

    async def close(self):
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(SOON)


def _run(coroutine_function):
    """Run on a fresh event loop, closing this loop's streams, listener and threads after."""

    async def main():
        try:
            return await coroutine_function()
        finally:
            page_events.close_for_this_loop()
            await waiters.close_for_this_loop()

    return asyncio.run(main())


def _in_thread(function, *args):
    """Commit a change from another thread (another connection), as another process would."""

    def run():
        try:
            function(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def _committed(function, *args):
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: _in_thread(function, *args).join()
    )


@pytest.fixture
def open_packet(gate):
    """A pending packet routed to the default approvers (alice and bob)."""

    def make(**overrides) -> PausePacket:
        return PausePacket.objects.get(id=gate(**overrides)["approval"]["id"])

    return make


def test_a_visitor_is_refused(app):
    async def scenario():
        stream = await Opened(app).start()
        await stream.read(1)
        return stream

    stream = _run(scenario)
    assert stream.status == 403 and stream.ended
    assert "event:" not in stream.text


def test_a_packet_stream_for_a_packet_the_user_may_not_see_is_404(app, open_packet, charlie):
    packet = open_packet()

    charlie_session = _session(charlie)

    async def scenario():
        stream = await Opened(app, f"packet={packet.id}", charlie_session).start()
        await stream.read(1)
        return stream

    stream = _run(scenario)
    assert stream.status == 404 and stream.ended


def test_a_bad_packet_id_is_400(app, alice):
    alice_session = _session(alice)

    async def scenario():
        stream = await Opened(app, "packet=nope", alice_session).start()
        await stream.read(1)
        return stream

    assert _run(scenario).status == 400


def test_the_queue_hears_a_packet_arrive_and_an_outsider_hears_nothing(app, gate, alice, charlie):
    alice_session = _session(alice)
    charlie_session = _session(charlie)

    async def scenario():
        reviewer = await Opened(app, "", alice_session).start()
        outsider = await Opened(app, "", charlie_session).start()
        await reviewer.read(0.5)  # open, and listening
        await _committed(gate)
        await reviewer.read(SOON)
        await outsider.read(1)
        await reviewer.close()
        await outsider.close()
        return reviewer, outsider

    reviewer, outsider = _run(scenario)
    assert reviewer.status == outsider.status == 200
    assert reviewer.headers["content-type"].startswith("text/event-stream")
    assert reviewer.headers["cache-control"] == "no-store"
    assert ("queue", "changed") in reviewer.events()
    assert outsider.events() == []


def test_a_packet_page_hears_its_packet_decided_with_the_cards_tag(app, open_packet, alice, bob):
    packet = open_packet()
    other = open_packet(execution__thread_id="other-run")

    bob_session = _session(bob)

    async def scenario():
        page = await Opened(app, f"packet={packet.id}", bob_session).start()
        await page.read(0.5)
        # Another packet in bob's queue: only "queue".
        await _committed(lambda: packet_approve(packet_id=other.id, user=alice))
        await page.read(1.5)
        told_before = page.events()
        await _committed(lambda: packet_approve(packet_id=packet.id, user=alice))
        await page.read(SOON)
        await page.close()
        return told_before, page.events()

    told_before, told = _run(scenario)
    assert told_before == [("queue", "changed")]
    packet.refresh_from_db()
    assert packet.status == "approved"
    assert ("packet", decision_state("approved", packet.snapshot_hash, 1)) in told


def test_a_reviewer_outside_the_route_hears_nothing_of_its_changes(
    app, open_packet, alice, make_user
):
    finance = make_user("fiona", "finance")
    packet = open_packet()

    finance_session = _session(finance)

    async def scenario():
        outsider = await Opened(app, "", finance_session).start()
        await outsider.read(0.5)
        await _committed(lambda: packet_approve(packet_id=packet.id, user=alice))
        await outsider.read(1.5)
        await outsider.close()
        return outsider

    assert _run(scenario).events() == []


def test_a_reconnecting_page_fetches_once_what_it_missed(app, open_packet, alice):
    packet = open_packet()

    alice_session = _session(alice)

    async def scenario():
        page = await Opened(
            app, f"packet={packet.id}", alice_session, headers=[(b"last-event-id", b"1")]
        ).start()
        await page.read(1)
        await page.close()
        return page

    page = _run(scenario)
    assert page.text.startswith("retry: ")
    assert set(page.events()) == {("queue", "changed"), ("packet", "reconnected")}


def test_streams_share_the_waiters_bound_and_a_refusal_says_when_to_come_back(app, alice, settings):
    settings.GATEKEEPER_MAX_WAITERS = 1

    alice_session = _session(alice)

    async def scenario():
        first = await Opened(app, "", alice_session).start()
        second = await Opened(app, "", alice_session).start()
        await second.read(1)
        await first.close()
        return first, second, len(waiters.for_this_loop().seats)

    first, second, seats_after = _run(scenario)
    assert first.status == 200
    assert second.status == 503 and int(second.headers["retry-after"]) >= 1
    assert seats_after == 0  # the closed stream gave its seat back


def test_streams_end_when_the_server_shuts_down(app, alice):
    alice_session = _session(alice)

    async def scenario():
        stream = await Opened(app, "", alice_session).start()
        await stream.read(0.5)
        page_events.hub_for_this_loop().close()
        await stream.read(SOON)
        refused = await Opened(app, "", alice_session).start()
        await refused.read(1)
        return stream, refused

    stream, refused = _run(scenario)
    assert stream.ended
    assert refused.status == 503 and refused.headers["retry-after"] == "1"


def test_only_pages_the_asgi_entry_serves_name_their_stream_and_without_it_the_url_is_204(
    client, alice, open_packet
):
    packet = open_packet()
    assert client.get("/approvals/events/").status_code == 302  # to the login page
    client.force_login(alice)
    # gthread or runserver: no page opens a stream (a browser would retry a 204 for ever).
    assert client.get("/approvals/events/").status_code == 204
    assert "sse-connect" not in client.get("/approvals/").content.decode()
    assert "sse-connect" not in client.get(f"/approvals/{packet.id}/").content.decode()
    # Served by gatekeeper.asgi (which marks its requests so), the pages name it.
    served = {"gatekeeper.page_events": True}
    queue = client.get("/approvals/", **served).content.decode()
    assert 'sse-connect="/approvals/events/"' in queue and "sse:queue" in queue
    page = client.get(f"/approvals/{packet.id}/", **served).content.decode()
    assert f'sse-connect="/approvals/events/?packet={packet.id}"' in page
    assert 'hx-trigger="sse:packet"' in page
