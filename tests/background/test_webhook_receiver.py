"""The test receiver checks what DESIGN section 6 asks receivers to check, against our signer.

It judges with the client's `verify_webhook`, so these are also that function's tests against
what the server really sends. The fault tests count on it: a delivery it accepted was signed
with the account's secret, is fresh, and is the first with its id.
"""

import json
import time
import urllib.error
import urllib.request

import pytest

from approvals import webhooks
from approvals.channels import webhook as webhook_channel
from approvals.models import OutboxMessage
from approvals.services import outbox
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create

BODY = webhooks.webhook_body("d1", "approval.decided", {"approval": {"id": "a1"}})


def _post(
    receiver,
    *,
    delivery: str,
    secret: str = "s3cret",
    signed_at: int | None = None,
    body: str = BODY,
    signature: str | None = None,
):
    timestamp = int(time.time()) if signed_at is None else signed_at
    request = urllib.request.Request(
        receiver.url,
        data=body.encode(),
        method="POST",
        headers={
            "Gatekeeper-Event": "approval.decided",
            "Gatekeeper-Delivery": delivery,
            "Gatekeeper-Signature": signature or webhooks.signature(secret, timestamp, body),
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)["verdict"]


@pytest.fixture
def receiver(webhook_receiver):
    webhook_receiver.secret = "s3cret"
    return webhook_receiver


def test_a_delivery_signed_by_gatekeeper_is_accepted(receiver):
    webhooks.post(
        receiver.url, event="approval.decided", delivery_id="d1", body=BODY, secret="s3cret"
    )
    assert [(d["delivery"], d["body"]) for d in receiver.items] == [("d1", json.loads(BODY))]


def test_a_delivery_signed_with_another_secret_is_refused(receiver):
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(receiver, delivery="d1", secret="guessed")
    assert refused.value.code == 401 and receiver.items == []


def test_a_signature_older_than_300_seconds_is_refused(receiver):
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(receiver, delivery="d1", signed_at=int(time.time()) - 301)
    assert refused.value.code == 400 and receiver.items == []


def test_a_repeated_delivery_id_is_acknowledged_but_not_processed_again(receiver):
    assert _post(receiver, delivery="d1") == (200, "accepted")
    assert _post(receiver, delivery="d1") == (200, "duplicate")
    assert [d["delivery"] for d in receiver.items] == ["d1"]
    assert [d["delivery"] for d in receiver.duplicates.items] == ["d1"]


def test_the_signed_body_carries_the_delivery_id_first():
    assert json.loads(BODY) == {"id": "d1", "event": "approval.decided", "approval": {"id": "a1"}}
    assert BODY.startswith('{"id": "d1", ')


def test_a_captured_delivery_replayed_under_a_new_delivery_id_is_refused(receiver):
    """The id is inside the signature: a new Gatekeeper-Delivery header no longer matches it."""
    signature = webhooks.signature("s3cret", int(time.time()), BODY)
    assert _post(receiver, delivery="d1", signature=signature) == (200, "accepted")
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(receiver, delivery="d1-replayed", signature=signature)
    assert refused.value.code == 400
    assert receiver.refused.items == [
        {
            "delivery": "d1-replayed",
            "status": 400,
            "reason": "the body's id is not the Gatekeeper-Delivery header's",
        }
    ]
    assert [d["delivery"] for d in receiver.items] == ["d1"]


def test_a_body_rewritten_to_the_new_id_breaks_the_signature(receiver):
    signature = webhooks.signature("s3cret", int(time.time()), BODY)
    replayed = BODY.replace('"id": "d1"', '"id": "d2"')
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(receiver, delivery="d2", signature=signature, body=replayed)
    assert refused.value.code == 401 and receiver.items == []


def test_a_decision_sent_from_the_outbox_is_accepted(receiver, packet_for, alice):
    account, _token = service_account_create(name="hooked", callback_url=receiver.url)
    receiver.secret = account.webhook_secret
    packet = packet_for(account=account)
    packet_approve(packet_id=packet.id, user=alice)
    message = OutboxMessage.objects.get(kind=webhook_channel.KIND, topic="approval.decided")
    assert outbox.deliver(message.id) == "sent"
    (hook,) = receiver.items
    assert (hook["delivery"], hook["event"]) == (str(message.id), "approval.decided")
    assert hook["body"]["approval"]["id"] == str(packet.id)
    assert receiver.refused.items == []
