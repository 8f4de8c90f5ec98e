"""Service accounts: the orchestrators' API identities."""

import hashlib
import secrets

from django.db import transaction

from approvals.models import ServiceAccount

TOKEN_PREFIX = "gk_"


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def service_account_create(*, name: str, callback_url: str = "") -> tuple[ServiceAccount, str]:
    """Create an account; returns it with its token, which is never stored and never shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    account = ServiceAccount.objects.create(
        name=name,
        token_prefix=token[:10],
        token_hash=token_hash(token),
        callback_url=callback_url,
        webhook_secret=secrets.token_urlsafe(32) if callback_url else "",
    )
    return account, token


@transaction.atomic
def service_account_rotate_token(*, account: ServiceAccount) -> str:
    """Replace the token; the old one stops working at once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    account.token_prefix = token[:10]
    account.token_hash = token_hash(token)
    account.save(update_fields=["token_prefix", "token_hash"])
    return token


def service_account_for_token(token: str) -> ServiceAccount | None:
    """The active account a bearer token belongs to (lookup by hash: constant-time by design)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    return ServiceAccount.objects.filter(token_hash=token_hash(token), is_active=True).first()
