"""`gatekeeper-relay`: turns Gatekeeper's webhooks into a durable workflow engine's own signal.

An operator runs it next to the engine, with the service account's `callback_url` pointed at
it. Every delivery is verified (`verify_webhook`: a bad signature is 401, skew or a replayed
delivery id refused); an `approval.decided` event, or an `approval.updated` one that sends the
approval back to review (`re_review`: the workflow must read its facts again and ask again),
goes to the handler of the engine that asked for that approval, and the relay answers 2xx
only once the handler says the engine accepted the signal, so Gatekeeper's outbox retries
until it did. A decision already signalled is answered 200 and never signalled twice,
whatever its delivery id.

Which engine and which run an approval belongs to travels with it: the adapter sets the gate
check's `callback` (`{"engine": "temporal", "workflow_id": ...}`), which Gatekeeper echoes in
the webhook. The relay's `RelayStore` (a SQLite file) remembers what it signalled, and what
adapters recorded for long-polling or for a server that echoes no callback.

    gatekeeper-relay --port 8787 --store /var/lib/gatekeeper/relay.sqlite \
        --engine stepfunctions --engine temporal      # secret from GATEKEEPER_WEBHOOK_SECRET
"""

from __future__ import annotations

import argparse
import http.server
import importlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .errors import InvalidSignature, RepeatedDelivery, WebhookRefused
from .models import OPEN_STATUSES
from .verdicts import STALE
from .webhooks import SeenDeliveries, verify_webhook

DECIDED = "approval.decided"
MAX_BODY = 1024 * 1024  # a webhook is one approval: far smaller
# Built-in engines by name; `--engine module:factory` loads any other.
ENGINES = {
    "stepfunctions": "gatekeeper_client.stepfunctions:relay_handler",
    "temporal": "gatekeeper_client.temporal:relay_handler",
    "prefect": "gatekeeper_client.prefect:relay_handler",
    "airflow": "gatekeeper_client.airflow:relay_handler",
}


def wakes_engine(approval: Mapping[str, Any]) -> bool:
    """Whether a run waiting on the approval must hear of it now: decided, or sent back to
    review (superseded only follows the run's own refresh; its successor is waited on)."""
    status = approval.get("status")
    return status == STALE or status not in (*OPEN_STATUSES, "superseded")


class EngineHandler(Protocol):
    """Signals one engine that an approval it waits on was decided or went back to review.

    `signal` returns once the engine accepted the signal and raises when it did not (the
    relay then answers 503 and Gatekeeper delivers again). It may be called again for a
    decision whose signal was accepted but not recorded (the relay stopped in between): a
    handler tells the engine in a way that a second call changes nothing.
    """

    def signal(self, target: Mapping[str, Any], approval: Mapping[str, Any]) -> None: ...


class UnknownApproval(LookupError):
    """No engine run waits on this approval (yet): the adapter records it before it waits."""


class RelayStore:
    """Which engine run waits on which approval, and which decisions were signalled: SQLite.

    One file shared by the engine's adapters (they `expect` an approval) and the relay (it
    `target`s and `mark_signalled`s it). Safe across threads and processes on one host.
    """

    def __init__(self, path: str):
        self.path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS waits (approval_id TEXT PRIMARY KEY, engine TEXT"
                " NOT NULL, target TEXT NOT NULL, signalled_status TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def expect(self, approval_id: str, engine: str, target: Mapping[str, Any]) -> None:
        """Record that `engine`'s run `target` waits on the approval (again: the same row)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO waits (approval_id, engine, target) VALUES (?, ?, ?)"
                " ON CONFLICT (approval_id) DO UPDATE SET engine = excluded.engine,"
                " target = excluded.target",
                (approval_id, engine, json.dumps(dict(target), sort_keys=True)),
            )

    def target(self, approval_id: str) -> tuple[str, dict, str | None]:
        """(engine, target, status signalled or None); raises UnknownApproval."""
        with self._connect() as db:
            row = db.execute(
                "SELECT engine, target, signalled_status FROM waits WHERE approval_id = ?",
                (approval_id,),
            ).fetchone()
        if row is None:
            raise UnknownApproval(approval_id)
        return row[0], json.loads(row[1]), row[2]

    def open_waits(self, engine: str) -> list[tuple[str, dict]]:
        """(approval id, target) of `engine`'s runs still waiting: for long-polling instead."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT approval_id, target FROM waits WHERE engine = ?"
                " AND signalled_status IS NULL",
                (engine,),
            ).fetchall()
        return [(approval_id, json.loads(target)) for approval_id, target in rows]

    def mark_signalled(
        self,
        approval_id: str,
        status: str,
        engine: str = "",
        target: Mapping[str, Any] | None = None,
    ) -> None:
        """Record that the decision was signalled (the wait's row is made when there was none)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO waits (approval_id, engine, target, signalled_status)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (approval_id) DO UPDATE"
                " SET signalled_status = excluded.signalled_status",
                (approval_id, engine, json.dumps(dict(target or {}), sort_keys=True), status),
            )


class Relay:
    """Handles one verified-or-refused delivery: `receive(headers, body) -> (status, body)`."""

    def __init__(
        self,
        secret: str,
        store: RelayStore,
        handlers: Mapping[str, EngineHandler],
        *,
        tolerance: float = 300,
        seen: SeenDeliveries | None = None,
    ):
        self.secret = secret
        self.store = store
        self.handlers = dict(handlers)
        self.tolerance = tolerance
        self.seen = seen if seen is not None else SeenDeliveries(ttl=2 * tolerance)
        self._lock = threading.Lock()  # one signal at a time: a decision is never sent twice

    def receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        try:
            event = verify_webhook(
                self.secret, headers, body, tolerance=self.tolerance, seen=self.seen
            )
        except RepeatedDelivery:
            return 200, {"result": "already received"}
        except InvalidSignature as refused:
            return 401, {"error": str(refused)}
        except WebhookRefused as refused:
            return 400, {"error": str(refused)}
        try:
            status, answer = self._dispatch(event)
        except Exception:
            self.seen.discard(event.get("id"))  # so Gatekeeper's retry is accepted
            raise
        if status >= 300:
            self.seen.discard(event.get("id"))
        return status, answer

    def _dispatch(self, event: dict) -> tuple[int, dict]:
        approval = event.get("approval")
        if not isinstance(approval, dict) or not isinstance(approval.get("id"), str):
            return 400, {"error": "the event carries no approval"}
        if not (event.get("event") == DECIDED or approval.get("status") == STALE):
            return 200, {"result": "not decided yet: nothing to signal"}
        with self._lock:
            try:
                engine, target, signalled = self._route(approval)
            except UnknownApproval:
                # Not recorded yet (the adapter records it as the gate answers): retried later.
                return 404, {"error": f"no engine run waits on approval {approval['id']}"}
            if signalled is not None:
                return 200, {"result": f"already signalled ({signalled})"}
            handler = self.handlers.get(engine)
            if handler is None:
                return 503, {"error": f"this relay has no handler for engine {engine!r}"}
            try:
                handler.signal(target, approval)
            except Exception as error:  # noqa: BLE001 - the engine refused or is away: retry
                return 503, {"error": f"{engine} did not accept the signal: {error}"}
            self.store.mark_signalled(approval["id"], approval.get("status", ""), engine, target)
        return 200, {"result": f"signalled {engine}"}

    def _route(self, approval: dict) -> tuple[str, dict, str | None]:
        """(engine, target, status signalled before): the echoed callback, else the store's."""
        callback = approval.get("callback")
        try:
            engine, target, signalled = self.store.target(approval["id"])
        except UnknownApproval:
            if not (isinstance(callback, dict) and isinstance(callback.get("engine"), str)):
                raise
            engine, target, signalled = "", {}, None
        if isinstance(callback, dict) and isinstance(callback.get("engine"), str):
            engine, target = callback["engine"], callback
        return engine, target, signalled


def long_poll(
    gk: Any,
    store: RelayStore,
    engine: str,
    handler: EngineHandler,
    stop: threading.Event,
    *,
    poll: int = 5,
) -> None:
    """Without webhooks (an account with no callback URL): wait on each approval `engine`'s
    runs wait on, and signal what wakes them as the relay would, until `stop` is set."""
    while not stop.is_set():
        for approval_id, target in store.open_waits(engine):
            approval = gk.wait(approval_id, timeout=poll, poll=poll, while_in=_QUIET)
            if wakes_engine(approval.raw):
                handler.signal(target, approval.raw)
                store.mark_signalled(approval_id, approval.status, engine, target)
        stop.wait(0.2)


_QUIET = ("pending", "reconciling")  # a human is still at it: nothing to tell the run yet


def server(relay: Relay, host: str = "127.0.0.1", port: int = 0) -> http.server.HTTPServer:
    """A threading HTTP server that answers POSTs (any path) with `relay.receive`."""

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                return self._answer(413, {"error": f"a delivery is at most {MAX_BODY} bytes"})
            body = self.rfile.read(length)
            try:
                status, answer = relay.receive(dict(self.headers.items()), body)
            except Exception as error:  # noqa: BLE001 - never a half-answer: a 500 is retried
                status, answer = 500, {"error": type(error).__name__}
            self._answer(status, answer)

        def _answer(self, status: int, answer: dict) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"relay: {format % args}\n")

    return http.server.ThreadingHTTPServer((host, port), Receiver)


def load_engine(spec: str) -> tuple[str, EngineHandler]:
    """`stepfunctions`, `temporal`, or `name=module:factory`: the factory builds the handler."""
    name, _, path = spec.partition("=")
    path = path or ENGINES.get(name, "")
    if ":" not in path:
        raise ValueError(
            f"unknown engine {spec!r}: one of {sorted(ENGINES)} or name=module:factory"
        )
    module, _, factory = path.partition(":")
    make: Callable[[], EngineHandler] = getattr(importlib.import_module(module), factory)
    return name, make()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatekeeper-relay", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--store", required=True, help="the SQLite file the adapters share")
    parser.add_argument("--engine", action="append", required=True, help="repeat per engine")
    parser.add_argument("--secret-env", default="GATEKEEPER_WEBHOOK_SECRET")
    parser.add_argument("--tolerance", type=float, default=300)
    options = parser.parse_args(argv)
    secret = os.environ.get(options.secret_env)
    if not secret:
        parser.error(f"set {options.secret_env} to the service account's webhook secret")
    handlers = dict(load_engine(spec) for spec in options.engine)
    relay = Relay(secret, RelayStore(options.store), handlers, tolerance=options.tolerance)
    httpd = server(relay, options.host, options.port)
    print(f"gatekeeper-relay listening on http://{options.host}:{httpd.server_port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
