"""Signing in with a password, throttled by django-axes.

Failures are counted per username and per client address (see gatekeeper.security.lockout_ip);
GATEKEEPER_LOGIN_FAILURE_LIMIT of them within GATEKEEPER_LOGIN_LOCKOUT_SECONDS lock that username
or address until the window has passed, or until an admin deletes the access attempts in admin.
While locked, a password is not even checked. The bearer-token API never comes here.
"""

import hashlib
import math
import unicodedata
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
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


def lockout_ends(request, username: str | None) -> dict[str, datetime]:
    """When each lock that holds for this attempt ends: {"username": t, "ip": t}, those in force.

    Attempts are rows (username, address, user agent) carrying a failure count and the time of
    their latest failure; a lock holds while the rows still inside the window add up to the
    limit. Counting back from the newest row, the one that reaches the limit is the one whose
    leaving the window lifts the lock.
    """
    cool_off = get_cool_off(request)
    limit = get_failure_limit(request, None)
    since = timezone.now() - cool_off
    ends = {}
    for key, field, value in (
        ("username", "username", username),
        ("ip", "ip_address", getattr(request, "axes_ip_address", None)),
    ):
        if value is None:
            continue
        rows = (
            AccessAttempt.objects.filter(**{field: value}, attempt_time__gte=since)
            .order_by("-attempt_time")
            .values_list("attempt_time", "failures_since_start")
        )
        failures = 0
        for attempt_time, count in rows:
            failures += count
            if failures >= limit:
                ends[key] = attempt_time + cool_off
                break
    return ends


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
