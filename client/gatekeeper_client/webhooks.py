"""Receiving Gatekeeper's webhooks: `verify_webhook`, and `SeenDeliveries` to refuse repeats.

seen = SeenDeliveries()

def receive(request):  # in your web framework's view
    try:
        event = verify_webhook(SECRET, request.headers, request.body, seen=seen)
    except RepeatedDelivery:
        return 200  # handled already; a 2xx stops Gatekeeper resending
    except WebhookRefused as refused:
        return 401 if isinstance(refused, InvalidSignature) else 400
    handle(event["event"], event["approval"])
    return 200
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, Union

from .errors import InvalidDelivery, InvalidSignature, RepeatedDelivery, StaleSignature

SIGNATURE_HEADER = "Gatekeeper-Signature"
DELIVERY_HEADER = "Gatekeeper-Delivery"
DEFAULT_TOLERANCE = 300  # seconds; DESIGN section 6 asks receivers to refuse more skew


class DeliveryStore(Protocol):
    """Remembers delivery ids: a `set`, a `SeenDeliveries`, or your own (shared) store."""

    def __contains__(self, delivery_id: object) -> bool: ...

    def add(self, delivery_id: str) -> Any: ...


# Or one callable that records the id and says whether it was there before, atomically: across
# processes that is one Redis `SET key 1 NX EX 600` (seen when it did not set).
Seen = Union[DeliveryStore, Callable[[str], bool]]  # noqa: UP007 - evaluated on Python 3.10


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    seen: Seen | None = None,
) -> dict:
    """The delivered event (`{"id", "event", "approval"}`) once the delivery proves genuine.

    `headers` are the request's (any mapping; names are matched in any case), `body` its raw
    bytes exactly as received: parsing and re-serialising them breaks the signature. Raises
    `InvalidSignature` when `Gatekeeper-Signature` is missing or not made with `secret`,
    `StaleSignature` when it was made more than `tolerance` seconds from now,
    `InvalidDelivery` when the body is not a JSON object or its `id` differs from the
    `Gatekeeper-Delivery` header (the header is not signed; the body is), and, when a `seen`
    store is given, `RepeatedDelivery` when this delivery id was accepted before (the id is
    recorded now: if handling the event then fails, remove it so Gatekeeper's retry counts).
    All of them are `WebhookRefused`.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    timestamp, signatures = _parse_signature(_header(headers, SIGNATURE_HEADER))
    expected = hmac.new(secret.encode(), b"%d." % timestamp + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise InvalidSignature("the signature was not made with this secret")
    skew = time.time() - timestamp
    if abs(skew) > tolerance:
        raise StaleSignature(f"signed {abs(skew):.0f} s {'ago' if skew > 0 else 'ahead'}")
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise InvalidDelivery("the body is not a JSON object")
    delivery_id = _delivery_id(event, _header(headers, DELIVERY_HEADER))
    if seen is not None:
        if delivery_id is None:
            raise InvalidDelivery(f"no delivery id to check for repeats ({DELIVERY_HEADER})")
        if _seen_before(seen, delivery_id):
            raise RepeatedDelivery(
                f"delivery {delivery_id} was seen before", delivery_id=delivery_id, event=event
            )
    return event


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def _parse_signature(header: str | None) -> tuple[int, list[str]]:
    """`t=<unix>,v1=<hex>[,v1=<hex>...]` -> (t, [hex, ...])."""
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature(f"{SIGNATURE_HEADER} is not t=<unix time>,v1=<hex>")
    return timestamp, signatures


def _delivery_id(event: dict, header: str | None) -> str | None:
    signed = event.get("id")
    if signed is not None and not isinstance(signed, str):
        raise InvalidDelivery("the body's id is not a string")
    if signed is not None and header is not None and signed != header:
        raise InvalidDelivery(f"the body's id is not the {DELIVERY_HEADER} header's")
    return signed if signed is not None else header


def _seen_before(seen: Seen, delivery_id: str) -> bool:
    if callable(seen):
        return bool(seen(delivery_id))
    if delivery_id in seen:
        return True
    seen.add(delivery_id)
    return False


class SeenDeliveries:
    """Delivery ids seen in the last `ttl` seconds, in memory, at most `max_size` of them.

    For one receiving process; several processes need a shared store (see `Seen`). Keep
    `ttl` at least `verify_webhook`'s `tolerance`: an older delivery is refused as stale
    anyway. Past `max_size` the oldest ids are forgotten first. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        ttl: float = 2 * DEFAULT_TOLERANCE,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._ids: OrderedDict[str, float] = OrderedDict()  # id -> when first seen, oldest first
        self._lock = threading.Lock()

    def __call__(self, delivery_id: str) -> bool:
        """Record the id; True when it was already recorded (one atomic step)."""
        with self._lock:
            now = self._clock()
            self._forget_before(now - self.ttl)
            if delivery_id in self._ids:
                return True
            self._ids[delivery_id] = now
            while len(self._ids) > self.max_size:
                self._ids.popitem(last=False)
            return False

    def __contains__(self, delivery_id: object) -> bool:
        with self._lock:
            self._forget_before(self._clock() - self.ttl)
            return delivery_id in self._ids

    def __len__(self) -> int:
        with self._lock:
            self._forget_before(self._clock() - self.ttl)
            return len(self._ids)

    def add(self, delivery_id: str) -> None:
        self(delivery_id)

    def discard(self, delivery_id: str) -> None:
        """Forget an id, so its retry is accepted: for when handling the event failed."""
        with self._lock:
            self._ids.pop(delivery_id, None)

    def _forget_before(self, cutoff: float) -> None:
        while self._ids and next(iter(self._ids.values())) < cutoff:
            self._ids.popitem(last=False)
