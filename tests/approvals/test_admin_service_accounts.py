"""Service accounts in the admin: the token is shown once, stored only as a hash, and rotatable."""

import re

import pytest
from django.urls import reverse

from approvals.models import ServiceAccount
from approvals.services.service_accounts import (
    service_account_create,
    service_account_for_token,
    token_hash,
)

ADD_URL = reverse("admin:approvals_serviceaccount_add")
LIST_URL = reverse("admin:approvals_serviceaccount_changelist")


def shown(content: str, name: str) -> str | None:
    found = re.search(rf"{name}=([A-Za-z0-9_-]+)", content)
    return found.group(1) if found else None


@pytest.fixture
def account_with_token(db):
    return service_account_create(name="crew", callback_url="https://hooks.example.com/gk")


def test_adding_an_account_shows_its_token_once_and_stores_only_the_hash(admin_client):
    response = admin_client.post(ADD_URL, {"name": "langgraph", "callback_url": ""})

    assert response.status_code == 200
    content = response.content.decode()
    assert "Copy it now: it will not be shown again." in content
    token = shown(content, "token")
    account = ServiceAccount.objects.get(name="langgraph")
    assert account.token_hash == token_hash(token)
    assert token.startswith(account.token_prefix)
    assert token not in {account.token_hash, account.token_prefix, account.webhook_secret}
    assert service_account_for_token(token) == account
    assert shown(content, "webhook_secret") is None
    assert "no-store" in response["Cache-Control"]


def test_with_a_callback_url_the_webhook_secret_is_shown_once_too(admin_client):
    response = admin_client.post(
        ADD_URL, {"name": "crew", "callback_url": "https://hooks.example.com/gk"}
    )

    account = ServiceAccount.objects.get(name="crew")
    assert account.callback_url == "https://hooks.example.com/gk"
    assert shown(response.content.decode(), "webhook_secret") == account.webhook_secret


def test_the_account_pages_never_show_the_token_hash_or_webhook_secret(
    admin_client, account_with_token
):
    account, token = account_with_token

    pages = [
        admin_client.get(LIST_URL).content.decode(),
        admin_client.get(
            reverse("admin:approvals_serviceaccount_change", args=[account.pk])
        ).content.decode(),
    ]

    for content in pages:
        assert account.token_prefix in content
        assert token not in content
        assert account.token_hash not in content
        assert account.webhook_secret not in content


def test_a_name_already_taken_is_a_form_error(admin_client, agent):
    response = admin_client.post(ADD_URL, {"name": "agent", "callback_url": ""})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert ServiceAccount.objects.count() == 1


def test_rotating_replaces_the_token_and_shows_the_new_one_once(admin_client, account_with_token):
    account, old_token = account_with_token

    response = admin_client.post(
        LIST_URL, {"action": "rotate_token", "_selected_action": [account.pk]}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new_token = shown(response.content.decode(), "token")
    assert new_token != old_token
    account.refresh_from_db()
    assert account.token_hash == token_hash(new_token)
    assert service_account_for_token(old_token) is None
    assert service_account_for_token(new_token) == account


def test_deactivating_an_account_revokes_its_token(admin_client, account_with_token):
    account, token = account_with_token
    url = reverse("admin:approvals_serviceaccount_change", args=[account.pk])

    response = admin_client.post(url, {})

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.is_active is False
    assert service_account_for_token(token) is None


def test_the_name_and_callback_url_are_fixed_after_creation(admin_client, account_with_token):
    account, _ = account_with_token
    url = reverse("admin:approvals_serviceaccount_change", args=[account.pk])

    admin_client.post(
        url, {"name": "renamed", "callback_url": "https://x.test/", "is_active": "on"}
    )

    account.refresh_from_db()
    assert (account.name, account.callback_url) == ("crew", "https://hooks.example.com/gk")


def test_accounts_cannot_be_deleted_only_deactivated(admin_client, agent):
    url = reverse("admin:approvals_serviceaccount_delete", args=[agent.pk])

    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert ServiceAccount.objects.filter(pk=agent.pk).exists()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://hooks.example.com/gk", "must be an http or https URL"),
        ("http://127.0.0.1:9000/gk", "refused address 127.0.0.1: loopback"),
        ("http://[::1]/gk", "refused address ::1: loopback"),
        ("http://169.254.169.254/latest/meta-data/", "refused address 169.254.169.254: link-local"),
    ],
)
def test_a_callback_url_that_is_not_public_http_is_a_form_error(admin_client, url, error):
    response = admin_client.post(ADD_URL, {"name": "crew", "callback_url": url})

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["callback_url"])
    assert not ServiceAccount.objects.exists()


def test_a_listed_network_may_receive_webhooks(admin_client, settings):
    import ipaddress

    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    admin_client.post(ADD_URL, {"name": "crew", "callback_url": "http://10.20.1.2/gk"})

    assert ServiceAccount.objects.get(name="crew").callback_url == "http://10.20.1.2/gk"
