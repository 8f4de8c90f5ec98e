"""Sign-ins in the decision record: auth.login, auth.login_failed, auth.locked_out (DESIGN 8).

Connected in GatekeeperConfig.ready. django-axes decides a lockout inside its own
user_login_failed receiver, which is connected before these (importing axes.signals, above,
connects it): by the time record_login_failed runs, the attempt is counted and any lockout it
caused is known, so the failure and then the lockout go to the record in that order.
"""

import logging

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import models, transaction
from django.dispatch import receiver

from audit import kinds
from audit.actors import user_actor
from audit.services import record_event
from gatekeeper.login import REFUSED, lockout_ends
from gatekeeper.security import client_ip

logger = logging.getLogger(__name__)
# Set on the request when django-axes locked someone out because of this attempt.
LOCKED_OUT = "gatekeeper_locked_out"


class AuthEvent(models.TextChoices):
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOCKED_OUT = "auth.locked_out"


kinds.register(
    AuthEvent,
    {
        AuthEvent.AUTH_LOGIN: lambda data, step: "Signed in",
        AuthEvent.AUTH_LOGIN_FAILED: lambda data, step: "Sign-in failed",
        AuthEvent.AUTH_LOCKED_OUT: lambda data, step: "Locked out after repeated failed sign-ins",
    },
)


def _known_username(username) -> str | None:
    """The name if it is an account's, else None.

    People type their password into the username box now and then, and the decision record can
    never be edited: a name that is no account's is kept out of it. (django-axes keeps it in
    its access attempts, which expire and which an admin can delete.)
    """
    if not isinstance(username, str) or not username:
        return None
    model = get_user_model()
    exists = model._default_manager.filter(**{model.USERNAME_FIELD: username}).exists()
    return username if exists else None


@receiver(user_logged_in, dispatch_uid="gatekeeper.auth_audit.login")
def record_login(sender, request, user, **kwargs):
    # Client.force_login (tests) and scripts log in with a bare HttpRequest: no one signed in.
    if request is None or request.method is None:
        return
    with transaction.atomic():
        record_event(
            AuthEvent.AUTH_LOGIN,
            actor=user_actor(user),
            data={"ip": client_ip(request)},
        )


@receiver(user_locked_out, dispatch_uid="gatekeeper.auth_audit.locked_out")
def note_locked_out(sender, request, username, ip_address, **kwargs):
    # Recorded by record_login_failed, right after the failure that caused it.
    setattr(request, LOCKED_OUT, True)


@receiver(user_login_failed, dispatch_uid="gatekeeper.auth_audit.login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs):
    # Django has masked the password in `credentials` already; only the username is read.
    username = credentials.get(get_user_model().USERNAME_FIELD)
    ip = client_ip(request) if request is not None else None
    if request is not None and getattr(request, REFUSED, False):
        # Turned away unread while a lock holds: the lock's start is in the record already.
        # Recording each of these would let anyone append to the chain without limit.
        logger.warning("login refused: a lockout is in force (ip=%s)", ip)
        return
    known = _known_username(username)
    with transaction.atomic():
        record_event(
            AuthEvent.AUTH_LOGIN_FAILED, actor="anonymous", data={"username": known, "ip": ip}
        )
        if request is not None and getattr(request, LOCKED_OUT, False):
            ends = lockout_ends(request, username)
            record_event(
                AuthEvent.AUTH_LOCKED_OUT,
                actor="system",
                data={
                    "username": known,
                    "ip": ip,
                    "locked": sorted(ends),
                    "until": max(ends.values(), default=None),
                },
            )
