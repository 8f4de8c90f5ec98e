"""Signing and sending webhooks (DESIGN section 6).

A delivery goes only where gatekeeper.outbound allows, to the addresses it checked, and follows
no redirect: a 3xx is a failed delivery, so the signature never reaches another host. What a
failure says (DeliveryFailed) is written by us, never copied from the far side's answer.
"""

import hashlib
import hmac
import http.client
import json
import ssl
import time

from django.core.serializers.json import DjangoJSONEncoder

from gatekeeper import outbound

# Read from an answer at most this much, and only to let the connection end cleanly.
_ANSWER_READ_LIMIT = 64 * 1024


class DeliveryFailed(Exception):
    """A delivery that did not succeed; the message is safe to show to admins as it is."""


def signature(secret: str, timestamp: int, body: str) -> str:
    """Gatekeeper-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_body(delivery_id, event: str, content: dict) -> str:
    """The raw body: the delivery id first, inside what is signed, so a replay under a new
    Gatekeeper-Delivery header shows (the receiver compares the two)."""
    return json.dumps({"id": str(delivery_id), "event": event, **content}, cls=DjangoJSONEncoder)


def rebodied(raw: str, delivery_id) -> str:
    """The same webhook under a new delivery id (a redelivery of one already sent)."""
    document = json.loads(raw)
    event = document.pop("event")
    document.pop("id", None)
    return webhook_body(delivery_id, event, document)


def _connection(target: outbound.Destination, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    # http.client connects through this hook: to the checked addresses, never a fresh lookup.
    # The host name still goes into Host and, for https, into SNI and certificate checking.
    connection._create_connection = lambda _address, timeout, source=None: outbound.connect(
        target.addresses, timeout, source
    )
    return connection


def post(url: str, *, event: str, delivery_id: str, body: str, secret: str, timeout: float = 10):
    """POST one delivery; raises DeliveryFailed saying what failed unless the answer is 2xx."""
    try:
        target = outbound.destination(url)
    except outbound.RefusedDestination as refused:
        raise DeliveryFailed(str(refused)) from None
    connection = _connection(target, timeout)
    try:
        connection.request(
            "POST",
            target.target,
            body=body.encode(),
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Gatekeeper-Webhook/1",
                "Gatekeeper-Event": event,
                "Gatekeeper-Delivery": delivery_id,
                "Gatekeeper-Signature": signature(secret, int(time.time()), body),
            },
        )
        response = connection.getresponse()
        response.read(_ANSWER_READ_LIMIT)
        status = response.status
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise DeliveryFailed(f"connection refused by {target.host} port {target.port}") from None
    except ssl.SSLCertVerificationError:
        raise DeliveryFailed(f"the TLS certificate is not valid for {target.host}") from None
    except ssl.SSLError as error:
        raise DeliveryFailed(f"TLS failed ({type(error).__name__})") from None
    except http.client.RemoteDisconnected:
        raise DeliveryFailed(f"{target.host} closed the connection without answering") from None
    except http.client.HTTPException as error:
        # Its message may quote what the far side sent (BadStatusLine): the class name says enough.
        raise DeliveryFailed(f"the answer was not valid HTTP ({type(error).__name__})") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DeliveryFailed(f"could not connect to {target.host}: {reason}") from None
    finally:
        connection.close()
    if 300 <= status < 400:
        raise DeliveryFailed(f"answered HTTP {status}, a redirect, which is never followed")
    if not 200 <= status < 300:
        raise DeliveryFailed(f"answered HTTP {status}")
