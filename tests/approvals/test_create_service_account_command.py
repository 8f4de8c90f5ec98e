"""manage.py create_service_account prints the token once and stores only its hash."""

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import ServiceAccount
from approvals.services.service_accounts import service_account_for_token


def _create(*args) -> dict[str, str]:
    out = StringIO()
    call_command("create_service_account", *args, stdout=out)
    lines = out.getvalue().splitlines()
    # Every line is a shell comment or key=value: the output can be eval'd by a script.
    assert all(line.startswith("#") or "=" in line for line in lines), lines
    assert any("shown only once" in line for line in lines)
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


def test_the_token_is_printed_on_a_line_of_its_own(db):
    values = _create("crm-agent")
    assert set(values) == {"token"}
    assert values["token"].startswith("gk_")


def test_only_the_hash_of_the_token_is_stored(db):
    token = _create("crm-agent")["token"]
    account = ServiceAccount.objects.get(name="crm-agent")
    assert account.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {account.token_hash, account.token_prefix, account.webhook_secret}
    assert account.callback_url == ""
    assert account.webhook_secret == ""


def test_the_printed_token_authenticates_the_new_account(db):
    token = _create("crm-agent")["token"]
    assert service_account_for_token(token) == ServiceAccount.objects.get(name="crm-agent")


def test_a_callback_url_also_prints_the_webhook_secret(db):
    values = _create("crm-agent", "--callback-url", "https://hooks.example.com/gatekeeper")
    assert set(values) == {"token", "webhook_secret"}
    account = ServiceAccount.objects.get(name="crm-agent")
    assert account.callback_url == "https://hooks.example.com/gatekeeper"
    assert account.webhook_secret == values["webhook_secret"]
    assert len(values["webhook_secret"]) >= 32


def test_two_accounts_get_different_tokens(db):
    assert _create("first")["token"] != _create("second")["token"]


def test_a_duplicate_name_is_refused_and_the_first_account_kept(db):
    token = _create("crm-agent")["token"]
    with pytest.raises(CommandError, match="a service account named 'crm-agent' already exists"):
        _create("crm-agent")
    assert ServiceAccount.objects.count() == 1
    assert service_account_for_token(token).name == "crm-agent"


@pytest.mark.parametrize("name", ["crm agent", "crm/agent", "ünïcode", "", "a" * 101])
def test_a_name_that_is_not_a_slug_is_refused(db, name):
    with pytest.raises(CommandError, match="name"):
        _create(name)
    assert not ServiceAccount.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/hook",
        "http://10.0.0.5/hook",
    ],
)
def test_an_invalid_callback_url_is_refused(db, url):
    with pytest.raises(CommandError, match="--callback-url"):
        _create("crm-agent", "--callback-url", url)
    assert not ServiceAccount.objects.exists()


def test_a_refused_address_is_named_in_the_error(db):
    with pytest.raises(CommandError) as refused:
        _create("crm-agent", "--callback-url", "http://169.254.169.254/")
    assert str(refused.value) == (
        "--callback-url 'http://169.254.169.254/' refused address 169.254.169.254: link-local, "
        "and not in GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS"
    )
