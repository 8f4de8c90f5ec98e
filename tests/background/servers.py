"""The outside world, for real: an SMTP server and a webhook receiver on 127.0.0.1.

Both run in threads of the test process and record what they accepted, so a test can wait for
an email or a webhook that a Celery worker (another process) sent over a real socket.
"""

import email
import email.policy
import json
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gatekeeper_client import (
    InvalidSignature,
    RepeatedDelivery,
    SeenDeliveries,
    WebhookRefused,
    verify_webhook,
)


class _Recorder:
    """A list that a test can wait on."""

    def __init__(self):
        self._condition = threading.Condition()
        self._items: list = []

    def add(self, item) -> None:
        with self._condition:
            self._items.append(item)
            self._condition.notify_all()

    @property
    def items(self) -> list:
        with self._condition:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list], bool], timeout: float, what: str) -> list:
        """Block until predicate(items) holds; fail the test with `what` after timeout seconds."""
        with self._condition:
            if not self._condition.wait_for(lambda: predicate(self._items), timeout=timeout):
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}: {self._items}"
                )
            return list(self._items)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: greet, EHLO, MAIL, RCPT, DATA, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self):
        self._reply("220 sink ESMTP")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                self._reply("250-sink")
                self._reply("250 8BITMIME")
            elif verb == "HELO" or verb == "NOOP":
                self._reply("250 ok")
            elif verb == "MAIL":
                sender, recipients = command.partition(":")[2].strip(), []
                self._reply("250 ok")
            elif verb == "RCPT":
                recipients.append(command.partition(":")[2].strip().strip("<>"))
                self._reply("250 ok")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                self.server.sink.add(self._message(sender, recipients, self._data()))
                self._reply("250 queued")
            elif verb == "RSET":
                sender, recipients = "", []
                self._reply("250 ok")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")

    def _data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)  # dot-unstuffing
        return b"".join(lines)

    @staticmethod
    def _message(sender: str, recipients: list[str], data: bytes) -> dict:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        return {
            "from": sender,
            "to": recipients,
            "subject": str(parsed["Subject"]),
            "message_id": str(parsed["X-Gatekeeper-Message"]),
            "text": parsed.get_body(("plain",)).get_content(),
        }


class _ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink(_Recorder):
    """A real SMTP server on 127.0.0.1 that keeps every message it is given."""

    def __init__(self):
        super().__init__()
        self._server = _ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WebhookReceiver(_Recorder):
    """An orchestrator's webhook endpoint, as DESIGN section 6 tells receivers to behave.

    It judges each delivery with the client's `verify_webhook`: the signature made with
    `secret`, a timestamp at most 300 s away, the body's id that of Gatekeeper-Delivery, and
    each delivery id processed once: a repeat is answered 200 (so the sender stops retrying)
    but not processed, and is listed in `duplicates`. `items` holds the deliveries it
    accepted. With `hang_first`, it accepts the first delivery and then holds the connection
    open until `release` is set, as a receiver does when the sender dies before reading the
    answer. With `answer` set to (status, headers, body), it answers every request with that
    instead, unread. With `tls` (an ssl.SSLContext), it speaks HTTPS and lists the server names
    clients asked for (SNI) in `server_names`.
    """

    def __init__(self, tls=None):
        super().__init__()
        self.answer: tuple[int, dict, bytes] | None = None
        self.server_names: list[str | None] = []
        self.secret = ""
        self.hang_first = False
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.duplicates = _Recorder()
        self.refused = _Recorder()
        self._seen = SeenDeliveries()
        self._hung = False  # the first accepted delivery hangs, when hang_first
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_webhook_handler(self))
        self.port = self._server.server_address[1]
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hooks/gatekeeper"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def receive(self, headers, raw: bytes) -> tuple[int, str]:
        """Judge one POST; returns (status, verdict)."""
        delivery = headers.get("Gatekeeper-Delivery", "")
        try:
            body = verify_webhook(self.secret, headers, raw, seen=self._seen)
        except RepeatedDelivery as repeated:
            self.duplicates.add(self._record(delivery, headers, repeated.event))
            return 200, "duplicate"
        except InvalidSignature as refused:
            return self._refuse(delivery, 401, str(refused))
        except WebhookRefused as refused:
            return self._refuse(delivery, 400, str(refused))
        with self._lock:
            hang = self.hang_first and not self._hung
            self._hung = self._hung or hang
        self.add(self._record(delivery, headers, body))
        return 200, "hang" if hang else "accepted"

    @staticmethod
    def _record(delivery: str, headers, body: dict) -> dict:
        return {
            "delivery": delivery,
            "event": headers.get("Gatekeeper-Event"),
            "host": headers.get("Host"),
            "body": body,
        }

    def _refuse(self, delivery: str, status: int, reason: str) -> tuple[int, str]:
        self.refused.add({"delivery": delivery, "status": status, "reason": reason})
        return status, reason

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def _make_webhook_handler(receiver: WebhookReceiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.answer is not None:
                receiver.add({"unread": True, "host": self.headers.get("Host")})
                status, headers, answer = receiver.answer
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(answer))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)
                return
            status, verdict = receiver.receive(self.headers, raw)
            if verdict == "hang":
                receiver.hanging.set()
                receiver.release.wait(timeout=60)
            answer = json.dumps({"verdict": verdict}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the sender is gone (a killed worker): nobody reads the answer

        def log_message(self, format, *args):
            pass

    return Handler
