"""Service accounts: the orchestrators' API identities."""

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from django.db import connection, transaction

from approvals.models import ServiceAccount

TOKEN_PREFIX = "gk_"
# "gk_" and 7 random characters: enough to tell tokens apart in admin and to find the account
# without comparing the secret in SQL. Prefixes need not be unique; the full hash is.
VISIBLE_LENGTH = 10
# What token_urlsafe makes. Anything else is refused before it reaches SQL (a NUL would not even
# be a valid PostgreSQL string).
TOKEN_SHAPE = re.compile(r"gk_[A-Za-z0-9_-]{8,200}")


# Every API request runs this: plain SQL and Model.from_db spare the ORM's query compilation
# (bench/PROFILES.md). The columns are the model's own, in its order.
_COLUMNS = [field.column for field in ServiceAccount._meta.concrete_fields]
_ACTIVE_BY_PREFIX = (
    f"SELECT {', '.join(_COLUMNS)} FROM approvals_serviceaccount"  # noqa: S608 (model's columns)
    " WHERE token_prefix = %s AND is_active"
)
_HASH_AT = _COLUMNS.index("token_hash")


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def service_account_create(
    *, name: str, callback_url: str = "", token_expires_at: datetime | None = None
) -> tuple[ServiceAccount, str]:
    """Create an account; returns it with its token, which is never stored and never shown again.

    With `token_expires_at`, the token stops working at that moment (401 "token expired").
    """
    token = _new_token()
    account = ServiceAccount.objects.create(
        name=name,
        token_prefix=token[:VISIBLE_LENGTH],
        token_hash=token_hash(token),
        token_expires_at=token_expires_at,
        callback_url=callback_url,
        webhook_secret=secrets.token_urlsafe(32) if callback_url else "",
    )
    return account, token


@transaction.atomic
def service_account_rotate_token(*, account: ServiceAccount) -> str:
    """Replace the token; the old one stops working at once. The expiry, if any, stays."""
    token = _new_token()
    account.token_prefix = token[:VISIBLE_LENGTH]
    account.token_hash = token_hash(token)
    account.save(update_fields=["token_prefix", "token_hash"])
    return token


def service_account_for_token(token: str) -> ServiceAccount | None:
    """The active account a bearer token belongs to, or None.

    The account is found by the token's visible prefix, and the secret is then compared as a
    SHA-256 digest with hmac.compare_digest: no comparison of the secret ever takes a time that
    depends on how much of it an attacker guessed right. An expired token is still returned
    (the caller answers "token expired"), a revoked one is not.
    """
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    digest = token_hash(token)
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_BY_PREFIX, [token[:VISIBLE_LENGTH]])
        candidates = cursor.fetchall()
    for row in candidates:
        if hmac.compare_digest(row[_HASH_AT], digest):
            return ServiceAccount.from_db(connection.alias, None, row)
    return None
