"""Security plumbing that is not a setting: idle sessions and client addresses."""

import ipaddress
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django_htmx.http import HttpResponseClientRefresh

# When the session was last renewed (Unix seconds), kept in the session itself.
RENEWED_KEY = "gatekeeper_renewed_at"
RENEWAL_PRECISION_SECONDS = 60


class SessionActivityMiddleware:
    """Sessions end after GATEKEEPER_SESSION_IDLE_SECONDS without the person doing anything.

    Django's SESSION_SAVE_EVERY_REQUEST would count the pages' own polling (the open count every
    30 s, the queue every 10 s) as activity, so a tab left open would never log out. Here a
    request renews the session unless it is an htmx GET, which is what the polls are: a click,
    a form, an action or a page load renews it. Like a token's last use, a renewal is written
    at most once a minute, not on every request.

    When the session has ended, an htmx request would get the login page swapped into whatever
    it was refreshing; it gets HX-Refresh instead, and the reloaded page goes to the login.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        from_htmx = request.headers.get("HX-Request") == "true"
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not (from_htmx and request.method == "GET")
        ):
            now = int(time.time())
            if now - request.session.get(RENEWED_KEY, 0) >= RENEWAL_PRECISION_SECONDS:
                # Any change saves the session, with a fresh expiry, and re-sends the cookie.
                request.session[RENEWED_KEY] = now
        if from_htmx and _redirects_to_login(response):
            return HttpResponseClientRefresh()
        return response


@receiver(user_logged_in, dispatch_uid="gatekeeper.security.login_renews")
def session_renewed_at_login(sender, request, user, **kwargs):
    # Logging in is activity, and the login saves the session anyway.
    if request is not None and hasattr(request, "session"):
        request.session[RENEWED_KEY] = int(time.time())


def _redirects_to_login(response) -> bool:
    if response.status_code not in (301, 302, 303) or not response.has_header("Location"):
        return False
    return urlsplit(response["Location"]).path == settings.LOGIN_URL


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The address of the person's machine, as far as this server can trust it.

    REMOTE_ADDR, unless GATEKEEPER_TRUSTED_PROXIES says N proxies stand in front: each appends
    the address it was connected from to X-Forwarded-For, so the Nth entry from the right is
    what the outermost one saw. Entries further left are whatever the client sent: never read.
    """
    count = settings.GATEKEEPER_TRUSTED_PROXIES
    if count:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(forwarded) >= count and (address := _ip(forwarded[-count])) is not None:
            return str(address)
    address = _ip(request.META.get("REMOTE_ADDR") or "")
    return None if address is None else str(address)


def lockout_ip(request) -> str | None:
    """The address login failures are counted against (django-axes' AXES_CLIENT_IP_CALLABLE).

    An IPv6 client usually holds a whole /64, so counting per address would give it 2^64 fresh
    starts: its failures count against the /64 (stored as the network's first address).
    """
    address = client_ip(request)
    if address is None:
        return None
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
