"""Signing in with a password, throttled by django-axes.

Failures are counted against three locks (see `login_locks`, and docs/security.md for why):
GATEKEEPER_LOGIN_FAILURE_LIMIT of them at one username from one client address (see
gatekeeper.security.lockout_ip) within GATEKEEPER_LOGIN_LOCKOUT_SECONDS lock that pair, and
GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT within GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS lock the
username from every address, or the address for every username. A lock holds until its window
has passed, or until an admin deletes the access attempts in admin. While locked, a password is
not even checked. The bearer-token API never comes here.
"""

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import connection, transaction
from django.shortcuts import render
from django.utils import timezone

# Names the advisory locks below (the two-key form, apart from the audit chain's one-key lock).
LOGIN_LOCK_SPACE = 0x6B_4C47
# Set on the request when the attempt was refused because a lock was already in force.
REFUSED = "gatekeeper_login_refused"


class LoginForm(AuthenticationForm):
    """Django's form, with the length limit it shows the browser also enforced on the server.

    AuthenticationForm sets max_length after the field is made, so nothing checks it; a name
    longer than any account's would reach django-axes, whose attempts table holds 255
    characters (a 500). Such a name is refused as the form error any wrong name gets.
    """

    def clean_username(self):
        username = self.cleaned_data["username"]
        if len(username) > self.fields["username"].max_length:
            raise self.get_invalid_login_error()
        return username


class LoginView(auth_views.LoginView):
    """Django's login view, one attempt per username at a time.

    django-axes checks the count, then the password is hashed (slow on purpose), then the failure
    is recorded: attempts racing in parallel would all pass the check before any was counted.
    Holding a lock on the username from the check to the commit makes the limit exact, so no
    account ever sees more than its limit of guesses per window, however many arrive at once.
    """

    authentication_form = LoginForm

    def post(self, request, *args, **kwargs):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    [LOGIN_LOCK_SPACE, _lock_key(request.POST.get("username", ""))],
                )
            return super().post(request, *args, **kwargs)


def _lock_key(username: str) -> int:
    # NFKC and strip, as the form does before authenticating. Hashed here, not by PostgreSQL:
    # the name is not validated yet, and a NUL in it would be no valid SQL string.
    name = unicodedata.normalize("NFKC", username.strip())
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' gate, first in AUTHENTICATION_BACKENDS; marks the attempts it refuses, so the
    decision record can tell a guess that was checked from one turned away unread."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            setattr(request, REFUSED, True)
            raise


@dataclass(frozen=True)
class Lock:
    """Failures counted over `fields` of the attempt; `limit` of them within `window` lock."""

    name: str  # as the decision record's auth.locked_out names it
    fields: tuple[str, ...]
    limit: int
    window: timedelta


def login_locks() -> tuple[Lock, ...]:
    """The locks a failed sign-in counts towards, from settings (read per call)."""
    pair = timedelta(seconds=settings.GATEKEEPER_LOGIN_LOCKOUT_SECONDS)
    ceiling = timedelta(seconds=settings.GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS)
    ceiling_limit = settings.GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT
    return (
        Lock(
            "account_at_address",
            ("username", "ip_address"),
            settings.GATEKEEPER_LOGIN_FAILURE_LIMIT,
            pair,
        ),
        Lock("account", ("username",), ceiling_limit, ceiling),
        Lock("address", ("ip_address",), ceiling_limit, ceiling),
    )


def failure_limit(request, credentials) -> int:
    """django-axes' AXES_FAILURE_LIMIT: the per-pair limit, which `get_failures` reports against."""
    return settings.GATEKEEPER_LOGIN_FAILURE_LIMIT


def longest_window(request) -> timedelta:
    """django-axes' AXES_COOLOFF_TIME: attempts older than every lock's window are deleted."""
    return max(lock.window for lock in login_locks())


def _lock_end(lock: Lock, values: dict, now: datetime) -> datetime | None:
    """When `lock` lifts for these values, or None when it does not hold.

    Attempts are rows (username, address, user agent) carrying a failure count and the time of
    their latest failure; a lock holds while the rows still inside its window add up to its
    limit. Counting back from the newest row, the one that reaches the limit is the one whose
    leaving the window lifts the lock.
    """
    rows = (
        AccessAttempt.objects.filter(**values, attempt_time__gte=now - lock.window)
        .order_by("-attempt_time")
        .values_list("attempt_time", "failures_since_start")
    )
    failures = 0
    for attempt_time, count in rows:
        failures += count
        if failures >= lock.limit:
            return attempt_time + lock.window
    return None


def lockout_ends(request, username: str | None) -> dict[str, datetime]:
    """When each lock that holds for this attempt ends, by the lock's name: those in force."""
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    known = {"username": username, "ip_address": getattr(request, "axes_ip_address", None)}
    ends = {}
    for lock in login_locks():
        values = {field: known[field] for field in lock.fields}
        if None in values.values():
            continue
        end = _lock_end(lock, values, now)
        if end is not None:
            ends[lock.name] = end
    return ends


class LoginAttemptHandler(AxesDatabaseHandler):
    """django-axes' database handler, with each lock counted against its own limit and window.

    django-axes locks when `get_failures` reaches AXES_FAILURE_LIMIT (`failure_limit`), taking
    the largest count over AXES_LOCKOUT_PARAMETERS with one limit and one window for all: that
    would lock an account from every address at the per-pair limit.
    """

    def get_failures(self, request, credentials=None) -> int:
        """The limit when any lock holds for this attempt, else 0: django-axes only compares."""
        username = get_client_username(request, credentials)
        return failure_limit(request, credentials) if lockout_ends(request, username) else 0


def _minute_after(moment: datetime) -> datetime:
    # "Try again after 14:05" must not be a minute early.
    return (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)


def lockout_response(request, original_response=None, credentials=None):
    """The login page again, saying until when (django-axes' AXES_LOCKOUT_CALLABLE); 429."""
    username = get_client_username(request, credentials)
    now = timezone.now()
    until = _minute_after(
        max(lockout_ends(request, username).values(), default=now + get_cool_off(request))
    )
    local = timezone.localtime(until)
    same_day = local.date() == timezone.localdate(now)
    shown = f"{local:%H:%M %Z}" if same_day else f"{local:%Y-%m-%d %H:%M %Z}"
    context = {
        "form": LoginForm(request, initial={"username": username or ""}),
        "locked_until": shown,
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(max(1, math.ceil((until - now).total_seconds())))
    return response
