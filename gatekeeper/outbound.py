"""Where Gatekeeper may send a request: the callback URL policy (DESIGN section 6).

A callback URL is http or https, and every address its host resolves to must be public: a
loopback, private, link-local, multicast, reserved or unspecified address (in any spelling:
IPv4, IPv6, IPv4-mapped IPv6, decimal or octal IPv4, which the resolver turns into the address
itself) is refused unless a network in GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS holds it. With DEBUG
on, loopback is allowed too: a development machine's receivers listen on 127.0.0.1.

The admin form and `create_service_account` check a URL when it is set; delivery checks it
again, since DNS can change, and connects to the very addresses it checked (`Destination`),
so a name that resolves differently a moment later cannot slip an internal address through.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052): the
# gateway connects to that address, so it is judged, not the wrapper.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedDestination(Exception):
    """A URL Gatekeeper will not send to; the message says why, in words for an admin."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: connect only to `addresses` (socket family and address pairs)."""

    scheme: str
    host: str
    port: int
    target: str
    addresses: tuple[tuple[int, tuple], ...]


def _judged(address: Address) -> Address:
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_refusal(address: Address) -> str | None:
    """Why `address` may not be sent to (e.g. "loopback"), or None when it may."""
    judged = _judged(address)
    if any(judged in network for network in settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS):
        return None
    if judged.is_loopback and settings.DEBUG:
        return None
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(judged, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if judged.is_global else "not public"


def _parts(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedDestination("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedDestination("must be an http or https URL")
    if not parts.hostname:
        raise RefusedDestination("has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination("must not hold a user name or password")
    port = port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


def _resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):  # ValueError: a name IDNA cannot encode, among others
        return []
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in found]


def _check(host: str, addresses: list[tuple[int, tuple]]) -> None:
    for _family, sockaddr in addresses:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the address is what is judged.
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if (reason := address_refusal(address)) is not None:
            named = "" if host == sockaddr[0] else f" ({host} resolves to it)"
            raise RefusedDestination(
                f"refused address {address}{named}: {reason}, and not in "
                "GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS"
            )


def destination(url: str) -> Destination:
    """Resolve and check `url` for sending now; RefusedDestination says what is wrong."""
    scheme, host, port, target = _parts(url)
    addresses = _resolve(host, port)
    if not addresses:
        raise RefusedDestination(f"could not resolve {host}")
    _check(host, addresses)
    return Destination(scheme, host, port, target, tuple(addresses))


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as a callback URL, or None. For forms and commands.

    A name that does not resolve yet is accepted: it reaches nothing now, and delivery checks
    it again before every request.
    """
    try:
        scheme, host, port, _target = _parts(url)
        _check(host, _resolve(host, port))
    except RefusedDestination as refused:
        return str(refused)
    return None


def connect(addresses, timeout: float, source_address=None) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers; no lookup here."""
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        return sock
    raise last_error or OSError("no address to connect to")
