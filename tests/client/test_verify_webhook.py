"""verify_webhook accepts what the server signs (approvals.webhooks) and refuses everything else."""

import json
import threading
import time

import pytest
from gatekeeper_client import (
    InvalidDelivery,
    InvalidSignature,
    RepeatedDelivery,
    SeenDeliveries,
    StaleSignature,
    WebhookRefused,
    verify_webhook,
)

from approvals import webhooks

SECRET = "whsec-test"
DELIVERY = "0b9e3f5e-7d7c-4c11-9d43-2f1f3c1e7a10"
EVENT = {"id": DELIVERY, "event": "approval.decided", "approval": {"id": "a1"}}


def signed(event=EVENT, *, secret=SECRET, at=None, delivery=DELIVERY) -> tuple[dict, str]:
    """Headers and body as Gatekeeper sends them, signed by the server's own code."""
    body = json.dumps(event)
    headers = {
        "Gatekeeper-Event": "approval.decided",
        "Gatekeeper-Signature": webhooks.signature(secret, at or int(time.time()), body),
    }
    if delivery is not None:
        headers["Gatekeeper-Delivery"] = delivery
    return headers, body


def test_a_delivery_the_server_signed_is_returned_as_its_event():
    headers, body = signed()
    assert verify_webhook(SECRET, headers, body.encode()) == EVENT
    assert verify_webhook(SECRET, headers, body) == EVENT  # the raw body as text works too


def test_header_names_match_in_any_case():
    headers, body = signed()
    lowered = {name.lower(): value for name, value in headers.items()}
    assert verify_webhook(SECRET, lowered, body, seen=set()) == EVENT


@pytest.mark.parametrize(
    "tamper",
    [
        lambda headers, body: (headers, body.replace("a1", "a2")),
        lambda headers, body: ({**headers, "Gatekeeper-Signature": "t=1,v1=00"}, body),
        lambda headers, body: (dict(headers, **{"Gatekeeper-Signature": "v1=abc"}), body),
        lambda headers, body: ({"Gatekeeper-Delivery": DELIVERY}, body),
    ],
    ids=["body changed", "forged signature", "no timestamp", "no signature"],
)
def test_a_changed_body_or_a_bad_signature_is_an_invalid_signature(tamper):
    headers, body = tamper(*signed())
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, headers, body)


def test_a_delivery_signed_with_another_secret_is_an_invalid_signature():
    headers, body = signed(secret="guessed")
    with pytest.raises(InvalidSignature) as refused:
        verify_webhook(SECRET, headers, body)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_signature_more_than_the_tolerance_away_is_stale(skew):
    headers, body = signed(at=int(time.time()) + skew)
    with pytest.raises(StaleSignature):
        verify_webhook(SECRET, headers, body)
    assert verify_webhook(SECRET, headers, body, tolerance=400) == EVENT


def test_a_body_whose_id_is_not_the_delivery_header_is_refused():
    # The header is not signed: a signed body replayed under a new delivery id must not pass.
    headers, body = signed(delivery="another-delivery")
    with pytest.raises(InvalidDelivery):
        verify_webhook(SECRET, headers, body, seen=set())


def test_the_id_comes_from_the_body_or_from_the_header_when_only_one_has_it():
    seen = set()
    headers, body = signed(delivery=None)
    verify_webhook(SECRET, headers, body, seen=seen)
    without_id = {key: value for key, value in EVENT.items() if key != "id"}
    headers, body = signed(without_id, delivery="d-2")
    verify_webhook(SECRET, headers, body, seen=seen)
    assert seen == {DELIVERY, "d-2"}


def test_with_a_store_a_delivery_without_any_id_is_refused():
    headers, body = signed({"event": "approval.decided"}, delivery=None)
    assert verify_webhook(SECRET, headers, body) == {"event": "approval.decided"}
    with pytest.raises(InvalidDelivery):
        verify_webhook(SECRET, headers, body, seen=set())


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '{"id": 7}'])
def test_a_signed_body_that_is_not_a_delivery_is_refused(body):
    headers = {"Gatekeeper-Signature": webhooks.signature(SECRET, int(time.time()), body)}
    with pytest.raises(InvalidDelivery):
        verify_webhook(SECRET, headers, body)


@pytest.mark.parametrize(
    "make_store",
    [set, SeenDeliveries, lambda: SeenDeliveries().__call__],
    ids=["a set", "SeenDeliveries", "a callable"],
)
def test_a_repeated_delivery_is_refused_by_every_kind_of_store(make_store):
    store = make_store()
    headers, body = signed()
    assert verify_webhook(SECRET, headers, body, seen=store) == EVENT
    with pytest.raises(RepeatedDelivery) as repeated:
        verify_webhook(SECRET, headers, body, seen=store)
    assert (repeated.value.delivery_id, repeated.value.event) == (DELIVERY, EVENT)
    assert isinstance(repeated.value, WebhookRefused)


def test_a_refused_delivery_is_not_remembered_as_seen():
    seen = SeenDeliveries()
    forged, body = signed(secret="guessed")
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, forged, body, seen=seen)
    headers, body = signed()
    assert verify_webhook(SECRET, headers, body, seen=seen) == EVENT


def test_a_discarded_id_is_accepted_again_so_a_failed_handling_can_be_retried():
    seen = SeenDeliveries()
    headers, body = signed()
    verify_webhook(SECRET, headers, body, seen=seen)
    seen.discard(DELIVERY)
    assert verify_webhook(SECRET, headers, body, seen=seen) == EVENT


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_seen_deliveries_forget_ids_after_their_ttl():
    clock = Clock()
    seen = SeenDeliveries(ttl=600, clock=clock)
    seen.add("d-1")
    clock.now += 599
    assert "d-1" in seen
    clock.now += 2
    assert "d-1" not in seen and len(seen) == 0


def test_seen_deliveries_forget_the_oldest_ids_past_their_size():
    seen = SeenDeliveries(max_size=2)
    for delivery in ("d-1", "d-2", "d-3"):
        seen.add(delivery)
    assert ("d-1" in seen, "d-2" in seen, "d-3" in seen) == (False, True, True)


def test_one_delivery_racing_in_many_threads_is_accepted_once():
    seen = SeenDeliveries()
    headers, body = signed()
    verdicts = []
    start = threading.Barrier(16)

    def receive():
        start.wait()
        try:
            verify_webhook(SECRET, headers, body, seen=seen)
            verdicts.append("accepted")
        except RepeatedDelivery:
            verdicts.append("repeated")

    threads = [threading.Thread(target=receive) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(verdicts) == ["accepted"] + ["repeated"] * 15
