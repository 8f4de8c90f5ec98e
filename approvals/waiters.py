"""Long-polls on an event loop: one LISTEN connection per process wakes every waiter in it.

A waiter costs a socket, a coroutine and an asyncio.Event: no thread, no database connection
while it waits. Its reads (the token, the packet) run on a few threads of their own, each with
one database connection kept as a WSGI thread keeps it. The bound on waiters comes from the
process's descriptor and memory limits, not from a pool.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import resource
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from approvals.errors import DATABASE_UNREACHABLE, Unavailable
from approvals.longpoll import Seats, listen_params
from approvals.wakeups import CHANNEL

log = logging.getLogger(__name__)

# Descriptors kept for everything but waiters: database connections, other requests, logs.
RESERVED_DESCRIPTORS = 256
# What the bound budgets for one waiter: several times what one was measured to cost the
# process (bench/PROFILES.md), as the kernel's socket buffers come on top.
WAITER_BYTES = 64 * 1024
# How long a poll waits for the LISTEN connection before it is told to come back.
LISTEN_READY_SECONDS = 5.0
RECONNECT_SECONDS = 1.0
# How long a checked bearer token is taken as checked (Tokens); tokens kept at most.
TOKEN_SECONDS = 5.0
TOKENS_KEPT = 1024


def raise_descriptor_limit() -> int:
    """Take the hard limit on open files as this process's own (servers may); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def _memory_budget() -> int:
    """Bytes this process may use: its address-space limit, its cgroup's, or its share of RAM."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY:
        return limit
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        cgroup = "max"
    if cgroup.isdigit():
        return int(cgroup) // (os.cpu_count() or 1)
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (os.cpu_count() or 1)


def waiter_capacity() -> int:
    """How many may wait in this process: GATEKEEPER_MAX_WAITERS, or what its limits allow."""
    if settings.GATEKEEPER_MAX_WAITERS:
        return settings.GATEKEEPER_MAX_WAITERS
    descriptors = raise_descriptor_limit() - RESERVED_DESCRIPTORS
    return max(1, min(descriptors, _memory_budget() // WAITER_BYTES))


class Answers:
    """Pending approvals' JSON as last read, per packet and account, while LISTEN is up.

    A packet's NOTIFY drops its entries, so a re-poll of an unchanged packet reads no row (its
    token is still checked). Only pending answers are kept: every change to a pending packet
    notifies, while an owner change alters a closed packet's JSON without a notification. A
    read that began before a notification is not kept (the generation moved on).
    """

    def __init__(self, size: int):
        self.size = size
        self._answers: dict[str, dict[int, dict]] = {}
        self._generation = 0
        self._open = False
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, payload: str, account_id: int) -> dict | None:
        with self._lock:
            return self._answers.get(payload, {}).get(account_id)

    def put(self, payload: str, account_id: int, answer: dict, generation: int) -> None:
        if answer["status"] != "pending":
            return
        with self._lock:
            if not self._open or generation != self._generation:
                return
            if payload not in self._answers and len(self._answers) >= self.size:
                self._answers.pop(next(iter(self._answers)))  # the oldest packet
            self._answers.setdefault(payload, {})[account_id] = answer

    def forget(self, payload: str) -> None:
        with self._lock:
            self._generation += 1
            self._answers.pop(payload, None)

    def open(self, is_open: bool) -> None:
        """Start keeping answers (LISTEN is up) or stop and drop them all (it went down)."""
        with self._lock:
            self._generation += 1
            self._answers.clear()
            self._open = is_open


class Tokens:
    """Service accounts by bearer token, as a full check found them less than `seconds` ago.

    A re-poll of an unchanged packet whose token was checked a moment ago is then answered on
    the event loop with no read at all (most polls, with thousands of agents of one account
    waiting). A revoked token's polls are refused within `seconds`; an expiry is checked on
    every use.
    """

    def __init__(self, seconds: float, size: int):
        self.seconds = seconds
        self.size = size
        self._accounts: dict[bytes, tuple[float, object]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(request) -> bytes:
        return hashlib.sha256(request.headers.get("Authorization", "").encode()).digest()

    def get(self, request):
        """The request's account, or None when its token was not checked recently."""
        key = self._key(request)
        with self._lock:
            kept = self._accounts.get(key)
        if kept is None:
            return None
        checked_until, account = kept
        if time.monotonic() >= checked_until or account.token_expired(timezone.now()):
            return None
        return account

    def put(self, request, account) -> None:
        """Keep what a full check of the request's token found."""
        key = self._key(request)
        with self._lock:
            if key not in self._accounts and len(self._accounts) >= self.size:
                self._accounts.pop(next(iter(self._accounts)))
            self._accounts[key] = (time.monotonic() + self.seconds, account)


class Listener:
    """LISTEN on the packets' channel over one connection; set the events of a packet's waiters.

    After every (re)connection all waiters are woken to read again: a change committed while
    no connection listened has no notification of its own. Followers (the reviewers' pages'
    streams) hear every packet's id, and None after a reconnection: anything may have changed.
    """

    def __init__(self, answers: Answers):
        self.answers = answers
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._followers: set[Callable[[str | None], None]] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._params = listen_params()

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())

    async def _listening(self) -> None:
        """Return once LISTEN is in place (starting it), or raise Unavailable."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        try:
            await asyncio.wait_for(self._ready.wait(), LISTEN_READY_SECONDS)
        except TimeoutError:
            raise Unavailable(DATABASE_UNREACHABLE) from None

    async def follow(self, follower: Callable[[str | None], None]) -> None:
        """Call follower(packet id) for every change from now on, on this loop."""
        await self._listening()
        self._followers.add(follower)

    def unfollow(self, follower: Callable[[str | None], None]) -> None:
        self._followers.discard(follower)

    async def subscribe(self, payload: str) -> asyncio.Event:
        """An event set when the packet changes from now on (LISTEN is in place on return)."""
        await self._listening()
        event = asyncio.Event()
        self._waiters.setdefault(payload, set()).add(event)
        return event

    def unsubscribe(self, payload: str, event: asyncio.Event) -> None:
        events = self._waiters.get(payload)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiters[payload]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**self._params, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.answers.open(True)
                    self._ready.set()
                    self._wake(list(self._waiters))
                    self._tell_followers(None)
                    async for notice in conn.notifies():
                        self.answers.forget(notice.payload)
                        self._wake([notice.payload])
                        self._tell_followers(notice.payload)
            except (psycopg.Error, OSError) as error:
                log.warning("LISTEN connection lost (%s); reconnecting", error)
            finally:
                self.answers.open(False)
            self._ready.clear()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _wake(self, payloads) -> None:
        for payload in payloads:
            for event in self._waiters.get(payload, ()):
                event.set()

    def _tell_followers(self, payload: str | None) -> None:
        for follower in list(self._followers):
            follower(payload)


class Waiters:
    """This process's listener, seats and reading threads, made for its event loop."""

    def __init__(self):
        self.seats = Seats(waiter_capacity())
        self.answers = Answers(self.seats.size)
        self.tokens = Tokens(TOKEN_SECONDS, TOKENS_KEPT)
        self.listener = Listener(self.answers)
        self._db = ThreadPoolExecutor(
            settings.GATEKEEPER_WAITER_DB_THREADS, thread_name_prefix="waiter-db"
        )

    @contextlib.asynccontextmanager
    async def watching(self, payload: str, seconds: float):
        """An event set when the packet changes from now on, and a seat for `seconds`; None
        when no seat is free."""
        seat = self.seats.try_take(seconds)
        if seat is None:
            yield None
            return
        try:
            event = await self.listener.subscribe(payload)
            try:
                yield event
            finally:
                self.listener.unsubscribe(payload, event)
        finally:
            self.seats.give_back(seat)

    async def in_db(self, function: Callable, *args):
        """function(*args) on a reading thread, its connection checked as per request."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, partial(_as_a_request, function, *args))

    async def close(self) -> None:
        await self.listener.close()
        # One task per thread (the barrier holds each until all have one): each closes its own.
        threads = settings.GATEKEEPER_WAITER_DB_THREADS
        barrier = threading.Barrier(threads)
        closing = [self._db.submit(_close_connections, barrier) for _ in range(threads)]
        await asyncio.gather(*(asyncio.wrap_future(future) for future in closing))
        self._db.shutdown(wait=False)


def _close_connections(barrier: threading.Barrier) -> None:
    connections.close_all()
    barrier.wait(timeout=10)


def _as_a_request(function: Callable, *args):
    # What Django's request_started/finished do for a WSGI thread's connection.
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Waiters] = (
    weakref.WeakKeyDictionary()
)


def for_this_loop() -> Waiters:
    loop = asyncio.get_running_loop()
    waiters = _by_loop.get(loop)
    if waiters is None:
        waiters = _by_loop[loop] = Waiters()
    return waiters


async def close_for_this_loop() -> None:
    waiters = _by_loop.pop(asyncio.get_running_loop(), None)
    if waiters is not None:
        await waiters.close()
