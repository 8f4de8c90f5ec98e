"""The HTTP parts both clients share: URLs, headers, and reading an answer. No I/O here."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .errors import GatekeeperError, error_from

API_PREFIX = "/api/v1"
USER_AGENT = "gatekeeper-client/1"


def api_base(base_url: str) -> str:
    """The server's root: a trailing slash or `/api/v1` is accepted and dropped."""
    base = base_url.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base


def quote(value: object) -> str:
    """One path segment: a thread id may hold any character."""
    return urllib.parse.quote(str(value), safe="")


def url_for(base_url: str, path: str, query: Mapping[str, str] | None = None) -> str:
    url = f"{base_url}{API_PREFIX}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url


def encode(body: Any) -> bytes | None:
    return None if body is None else json.dumps(body, ensure_ascii=False).encode()


def headers_for(token: str, data: bytes | None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if data is not None:
        headers["Content-Type"] = "application/json"
    return headers


def answer(status: int, reason: str, headers: Mapping[str, str], payload: bytes, url: str) -> Any:
    """The JSON of a 2xx answer; any other answer raises its typed `GatekeeperError`."""
    if not 200 <= status < 300:
        raise error_from(status, reason, headers, payload)
    try:
        return json.loads(payload)
    except ValueError:
        raise GatekeeperError(
            f"the answer from {url.split('?')[0]} is not JSON", code="bad_response"
        ) from None
