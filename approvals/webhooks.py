"""Signing and sending webhooks (DESIGN section 6)."""

import hashlib
import hmac
import time
import urllib.error
import urllib.request


def signature(secret: str, timestamp: int, body: str) -> str:
    """Gatekeeper-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, *, event: str, delivery_id: str, body: str, secret: str, timeout: float = 10):
    """POST one delivery; raises on a network error or a non-2xx answer."""
    request = urllib.request.Request(  # noqa: S310 - callback URLs are admin-set http(s) URLs
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Gatekeeper-Webhook/1",
            "Gatekeeper-Event": event,
            "Gatekeeper-Delivery": delivery_id,
            "Gatekeeper-Signature": signature(secret, int(time.time()), body),
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "not a 2xx answer", None, None)
