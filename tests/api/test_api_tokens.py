"""API tokens: hashed, found by their visible prefix, compared in constant time, revocable,
rotatable and, when given an expiry, refused after it with 401 "token expired"."""

import hashlib
import hmac
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from approvals.models import ServiceAccount
from approvals.services.service_accounts import (
    service_account_create,
    service_account_for_token,
    service_account_rotate_token,
    token_hash,
)
from tests.api.conftest import ApiClient, error_of

PATH = "/executions/no-such-thread"  # any authenticated GET: 404 once the token is accepted


def status_with(client, token) -> int:
    return ApiClient(client, token).get(PATH).status_code


@pytest.fixture
def expiring(db):
    def make(expires_at):
        return service_account_create(name="expiring", token_expires_at=expires_at)

    return make


def test_a_token_is_stored_as_its_sha256_with_a_visible_prefix(db):
    account, token = service_account_create(name="crew")

    assert account.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert account.token_prefix == token[:10] and token.startswith("gk_")
    assert len(token) > 40 and token not in (account.token_hash, account.token_prefix)


def test_a_token_without_expiry_keeps_working(client, api_account):
    assert status_with(client, api_account[1]) == 404


def test_a_token_before_its_expiry_works(client, expiring):
    _account, token = expiring(timezone.now() + timedelta(minutes=5))

    assert status_with(client, token) == 404


def test_an_expired_token_is_refused_saying_so(client, expiring):
    account, token = expiring(timezone.now() - timedelta(seconds=1))

    response = ApiClient(client, token).get(PATH)

    assert response.status_code == 401
    assert error_of(response) == {"code": "unauthorized", "message": "token expired", "details": {}}
    # Refused tokens are not "used".
    account.refresh_from_db()
    assert account.last_used_at is None


def test_a_wrong_secret_behind_an_expired_accounts_prefix_learns_nothing(client, expiring):
    _account, token = expiring(timezone.now() - timedelta(days=1))
    forged = token[:10] + "A" * (len(token) - 10)

    response = ApiClient(client, forged).get(PATH)

    assert response.status_code == 401
    assert error_of(response)["message"] == "a valid bearer token is required"


def test_a_revoked_token_is_refused(client, api_account):
    ServiceAccount.objects.filter(pk=api_account[0].pk).update(is_active=False)

    response = ApiClient(client, api_account[1]).get(PATH)

    assert response.status_code == 401
    assert error_of(response)["message"] == "a valid bearer token is required"


def test_rotating_stops_the_old_token_at_once_and_keeps_the_expiry(client, expiring):
    later = timezone.now() + timedelta(days=3)
    account, old = expiring(later)

    new = service_account_rotate_token(account=account)

    assert status_with(client, old) == 401
    assert status_with(client, new) == 404
    account.refresh_from_db()
    assert account.token_prefix == new[:10] and account.token_expires_at == later


def test_the_secret_is_compared_with_compare_digest(db):
    account, token = service_account_create(name="crew")

    with mock.patch(
        "approvals.services.service_accounts.hmac.compare_digest", wraps=hmac.compare_digest
    ) as compare:
        assert service_account_for_token(token) == account

    compare.assert_called_once_with(account.token_hash, token_hash(token))


def test_accounts_sharing_a_prefix_each_get_their_own(db):
    first, first_token = service_account_create(name="first")
    second, second_token = service_account_create(name="second")
    # Prefixes are short and may collide: the full hash tells the accounts apart.
    ServiceAccount.objects.filter(pk=second.pk).update(token_prefix=first.token_prefix)
    clash = first_token[:10] + second_token[10:]
    ServiceAccount.objects.filter(pk=second.pk).update(token_hash=token_hash(clash))

    assert service_account_for_token(first_token) == first
    assert service_account_for_token(clash) == second
    assert service_account_for_token(first_token[:10] + "x" * 33) is None


@pytest.mark.parametrize(
    "token",
    [
        "gk_",
        "gk_short",
        "gk_" + "\x00" * 40,
        "gk_" + "é" * 40,
        "gk_" + "a" * 5000,
        "GK_" + "a" * 40,
        "gk_abcdefg' OR '1'='1",
    ],
)
def test_malformed_tokens_are_plainly_unauthorized(client, api_account, token):
    response = client.get(f"/api/v1{PATH}", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_token_in_the_url_is_not_accepted(client, api_account):
    token = api_account[1]

    for name in ("token", "access_token", "api_key"):
        assert client.get(f"/api/v1{PATH}?{name}={token}").status_code == 401


def _create(*args) -> list[str]:
    out = StringIO()
    call_command("create_service_account", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_command_sets_an_expiry_in_days(db):
    before = timezone.now()
    lines = _create("nightly", "--expires-in-days", "30")

    account = ServiceAccount.objects.get(name="nightly")
    assert before + timedelta(days=30) <= account.token_expires_at
    assert account.token_expires_at <= timezone.now() + timedelta(days=30)
    assert any(line.startswith("# The token expires at ") for line in lines)
    assert any(line.startswith("token=gk_") for line in lines)


def test_the_command_without_expiry_makes_a_token_that_never_expires(db):
    _create("forever")

    assert ServiceAccount.objects.get(name="forever").token_expires_at is None


@pytest.mark.parametrize("days", ["0", "-3", "36501"])
def test_the_command_refuses_an_expiry_out_of_range(db, days):
    with pytest.raises(CommandError, match="--expires-in-days must be 1 to 36500"):
        _create("nightly", "--expires-in-days", days)
    assert not ServiceAccount.objects.exists()


def test_the_admin_sets_an_expiry_when_adding(admin_client):
    response = admin_client.post(
        reverse("admin:approvals_serviceaccount_add"),
        {
            "name": "crew",
            "callback_url": "",
            "token_expires_at_0": "2031-01-02",
            "token_expires_at_1": "03:04:05",
        },
    )

    assert response.status_code == 200, response.content
    account = ServiceAccount.objects.get(name="crew")
    assert account.token_expires_at.isoformat() == "2031-01-02T03:04:05+00:00"


def test_the_admin_changes_the_expiry_without_touching_the_token(admin_client, api_account):
    account, token = api_account
    url = reverse("admin:approvals_serviceaccount_change", args=[account.pk])

    response = admin_client.post(
        url,
        {"is_active": "on", "token_expires_at_0": "2020-01-01", "token_expires_at_1": "00:00:00"},
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.token_expires_at.isoformat() == "2020-01-01T00:00:00+00:00"
    assert account.token_hash == token_hash(token)
    assert service_account_for_token(token) == account
    assert account.token_expired(timezone.now())
