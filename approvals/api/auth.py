"""Bearer tokens for service accounts."""

from datetime import timedelta

from django.utils import timezone
from ninja.security.http import HttpBearer

from approvals.errors import GatekeeperError
from approvals.models import ServiceAccount
from approvals.services.service_accounts import service_account_for_token

# Recording every use would turn each read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenExpired(GatekeeperError):
    """A right token past its expiry: 401, saying why, so the operator knows to issue a new one.

    Only the holder of the full token learns this; any other token gets the plain 401.
    """

    code = "unauthorized"
    status = 401


class ServiceAccountBearer(HttpBearer):
    def __call__(self, request):
        # Ninja's own HttpBearer logs a malformed header in DEBUG; a token must never reach logs.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token: str) -> ServiceAccount | None:
        account = service_account_for_token(token)
        if account is None:
            return None
        now = timezone.now()
        if account.token_expired(now):
            raise TokenExpired("token expired")
        if account.last_used_at is None or now - account.last_used_at > LAST_USED_PRECISION:
            ServiceAccount.objects.filter(id=account.id).update(last_used_at=now)
        return account
