"""Server-sent events for the reviewers' pages: the queue and a packet page re-fetch when a
packet their reviewer may see arrives or changes (htmx's SSE extension listens).

GET /approvals/events/[?packet=<id>] under gatekeeper.asgi. A stream costs its socket and a
coroutine, like a waiting agent, and takes a seat of the same bound (approvals/waiters.py): no
thread and no database connection while it is open. The process's one LISTEN connection tells
one hub, which gathers the packets changed in a moment and asks, once per signed-in user with
a stream open, which of them that user may see. An event carries no packet data: its name
(`queue`: something in your queue changed; `packet`: the packet this page shows did) and, for
`packet`, an opaque tag of the decision card (selectors.packets.decision_state), so a page already
showing it (its reviewer's own action) fetches nothing. The page re-fetches its fragment
through the normal, permission-checked views.
"""

import asyncio
import logging
import signal
import uuid
import weakref

from django.contrib import auth
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError
from django.http import HttpResponse, StreamingHttpResponse

from approvals import waiters
from approvals.errors import Unavailable
from approvals.selectors import packets as packet_reads
from gatekeeper.async_views import AsyncViewHandler

log = logging.getLogger(__name__)

PATH = "/approvals/events/"
# A stream ends after this and the browser reconnects at once: the sign-in is checked again.
STREAM_SECONDS = 300
# A comment line on an idle stream, so proxies and load balancers keep it open.
KEEPALIVE_SECONDS = 25
# Changes heard within this are told as one event (one visibility query per user).
GATHER_SECONDS = 0.2
# How soon the browser reconnects after a stream ends (SSE `retry`).
RECONNECT_MS = 1000


def is_event_stream(scope: dict) -> bool:
    return scope["type"] == "http" and scope["method"] == "GET" and scope.get("path") == PATH


class Stream:
    """One open page: its reviewer, the packet it shows (if any), the events due to it."""

    def __init__(self, user, packet: str | None):
        self.user = user
        self.packet = packet
        self.due: dict[str, str] = {}  # event name -> data
        self.ready = asyncio.Event()

    def tell(self, name: str, data: str = "changed") -> None:
        self.due[name] = data
        self.ready.set()


class Hub:
    """This process's open streams, told of every change the LISTEN connection hears."""

    def __init__(self, here: waiters.Waiters):
        self.here = here
        self.streams: set[Stream] = set()
        self.closing = False
        self._changed: set[str] = set()
        self._everything = False
        self._telling: asyncio.Task | None = None

    async def open(self, stream: Stream) -> None:
        await self.here.listener.follow(self.heard)
        self.streams.add(stream)

    def close_stream(self, stream: Stream) -> None:
        self.streams.discard(stream)
        if not self.streams:
            self.here.listener.unfollow(self.heard)

    def heard(self, payload: str | None) -> None:
        """A packet changed (None: anything may have, LISTEN was re-established)."""
        if payload is None:
            self._everything = True
        else:
            self._changed.add(payload)
        if self._telling is None or self._telling.done():
            self._telling = asyncio.get_running_loop().create_task(self._tell())

    def close(self) -> None:
        """End every stream now (the server is shutting down); refuse new ones."""
        self.closing = True
        for stream in self.streams:
            stream.ready.set()

    async def _tell(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        while self._changed or self._everything:
            changed, everything = self._changed, self._everything
            self._changed, self._everything = set(), False
            try:
                await self._tell_once(changed, everything)
            except Exception:  # noqa: BLE001 (the next change is told again; this one is logged)
                log.exception("could not tell the reviewers' pages of a change")

    async def _tell_once(self, changed: set[str], everything: bool) -> None:
        by_user: dict[int, list[Stream]] = {}
        for stream in self.streams:
            by_user.setdefault(stream.user.pk, []).append(stream)
        if not by_user:
            return
        users = [streams[0].user for streams in by_user.values()]
        if everything:  # after a reconnection: any packet may have changed
            asked = [{s.packet for s in by_user[user.pk] if s.packet} for user in users]
        else:
            asked = [changed] * len(users)
        shown = {s.packet for s in self.streams if s.packet and (everything or s.packet in changed)}
        states, *visible = await asyncio.gather(
            self.here.in_db(packet_reads.decision_states, shown),
            *(self.here.in_db(_visible_among, u, ids) for u, ids in zip(users, asked, strict=True)),
        )
        for user, seen in zip(users, visible, strict=True):
            for stream in by_user[user.pk]:
                if seen or everything:
                    stream.tell("queue")
                if stream.packet in seen and stream.packet in states:
                    stream.tell("packet", states[stream.packet])


def _visible_among(user, packet_ids: set[str]) -> set[str]:
    """Which of the packets the user may see."""
    if not packet_ids:
        return set()
    packets = packet_reads.packets_visible_to(user).filter(id__in=packet_ids)
    return {str(packet_id) for packet_id in packets.values_list("id", flat=True)}


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_for_this_loop() -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(waiters.for_this_loop())
    return hub


def close_for_this_loop() -> None:
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        hub.close()


def end_streams_on_exit_signals() -> None:
    """At SIGTERM or SIGINT, end this loop's streams at once, then do what the server does.

    The server (uvicorn) stops accepting and waits for open responses before it shuts the
    application down; a stream would keep it waiting until its graceful timeout.
    """
    loop = asyncio.get_running_loop()

    def end_streams() -> None:
        hub = _hubs.get(loop)
        if hub is not None:
            hub.close()

    for signum in (signal.SIGTERM, signal.SIGINT):
        server_handler = signal.getsignal(signum)
        if not callable(server_handler):
            continue  # the default: the process ends without a shutdown to wait for

        def ending(number, frame, server_handler=server_handler):
            loop.call_soon_threadsafe(end_streams)
            server_handler(number, frame)

        try:
            signal.signal(signum, ending)
        except ValueError:  # not the main thread: nothing to chain to
            return


def _signed_in(request, packet: str | None):
    """The request's signed-in user (None when not), and whether they may see `packet`.

    Reads the session as SessionMiddleware and AuthenticationMiddleware do, without renewing
    it: an open page is not activity (gatekeeper.security.SessionActivityMiddleware).
    """
    SessionMiddleware(lambda request: None).process_request(request)
    user = auth.get_user(request)
    if not user.is_authenticated:
        return None, False
    if packet is None:
        return user, True
    return user, packet_reads.packets_visible_to(user).filter(id=packet).exists()


def _refused(status: int, text: str, **headers) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


async def page_events(request) -> HttpResponse:
    hub = hub_for_this_loop()
    here = hub.here
    packet = request.GET.get("packet") or None
    if packet is not None:
        try:
            packet = str(uuid.UUID(packet))
        except ValueError:
            return _refused(400, "packet: not an approval id")
    try:
        user, may_see = await here.in_db(_signed_in, request, packet)
    except OperationalError:
        return _refused(503, "the database is unreachable", Retry_After="5")
    if user is None:
        return _refused(403, "sign in first")
    if not may_see:
        return _refused(404, "no such approval")
    if hub.closing:
        return _refused(503, "this server is shutting down", Retry_After="1")
    seat = here.seats.try_take(STREAM_SECONDS)
    if seat is None:
        busy = here.seats.busy()
        return _refused(503, busy.message, Retry_After=str(busy.retry_after))
    stream = Stream(user, packet)
    try:
        await hub.open(stream)
    except Unavailable:
        here.seats.give_back(seat)
        return _refused(503, "the database is unreachable", Retry_After="5")
    # A reconnecting browser sends the id of the last event it had: what changed while it
    # was away has no event of its own, so the page re-fetches once.
    if "Last-Event-ID" in request.headers:
        stream.tell("queue")
        if packet is not None:
            stream.tell("packet", "reconnected")
    events = _Seated(_events(hub, stream), lambda: _leave(hub, stream, seat))
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _leave(hub: Hub, stream: Stream, seat: int) -> None:
    hub.here.seats.give_back(seat)
    hub.close_stream(stream)


class _Seated:
    """The stream's events; its seat is given back when they end (or never started: Django
    closes the response either way)."""

    def __init__(self, events, leave):
        self._events = events
        self._leave = leave

    def __aiter__(self):
        return self._events

    def close(self) -> None:
        self._leave()


async def _events(hub: Hub, stream: Stream):
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_SECONDS
    yield f"retry: {RECONNECT_MS}\nid: 1\n\n"
    while not hub.closing and (left := ends - loop.time()) > 0:
        try:
            await asyncio.wait_for(stream.ready.wait(), min(left, KEEPALIVE_SECONDS))
        except TimeoutError:
            yield ": still here\n\n"
            continue
        stream.ready.clear()
        due, stream.due = stream.due, {}
        for name, data in due.items():
            yield f"event: {name}\ndata: {data}\n\n"


class PageEventsHandler(AsyncViewHandler):
    """The pages' event stream under gatekeeper.asgi."""

    def __init__(self):
        super().__init__(page_events)
