"""Response headers: no framing, no sniffing, a strict Content-Security-Policy, HTTPS when
configured, and the production settings pass `manage.py check --deploy` from the environment."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_pages_forbid_framing_and_sniffing_and_keep_referrers_home(client, alice):
    client.force_login(alice)

    for response in (client.get("/approvals/"), Client().get("/accounts/login/")):
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_api_answers_are_not_sniffed_either(client, db):
    response = client.get("/api/v1/approvals/x")

    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_content_security_policy_allows_no_inline_script_or_style(client, alice):
    client.force_login(alice)

    policy = dict(
        (directive.split(" ", 1) + [""])[:2]
        for directive in client.get("/approvals/")["Content-Security-Policy"].split("; ")
    )

    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe" not in " ".join(policy.values())


def test_the_admin_inline_blocks_get_the_nonce_of_the_header(admin_client):
    response = admin_client.get("/admin/approvals/policy/")
    policy = response["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]

    assert f'nonce="{nonce}"' in response.content.decode()


def test_the_pages_name_the_htmx_settings_that_keep_it_inside_the_policy(client, alice):
    client.force_login(alice)

    page = client.get("/approvals/").content.decode()

    assert '"includeIndicatorStyles": false' in page
    assert '"allowEval": false' in page
    assert "<script>" not in page and " style=" not in page


def test_plain_http_is_redirected_to_https_unless_the_proxy_says_it_was_https(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000

    plain = Client().get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/"

    secure = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


def production_environment(**overrides) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "GATEKEEPER_", "SESSION_", "CSRF_"))
    }
    environment.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "gatekeeper.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://gatekeeper.example.com",
            "DATABASE_URL": os.environ.get(
                "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatekeeper"
            ),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "GATEKEEPER_PROXY_SSL_HEADER": "X-Forwarded-Proto",
            "GATEKEEPER_NO_BOOTSTRAP": "1",
        }
    )
    environment.update(overrides)
    # Set by the browser tests' fixture for this process; never in a deployment.
    for harness in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        environment.pop(harness, None)
    return {key: value for key, value in environment.items() if value is not None}


def manage(*args: str, **overrides) -> subprocess.CompletedProcess:
    """`manage.py ARGS` in a production environment (with the overrides)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_environment(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_deploy(**overrides) -> subprocess.CompletedProcess:
    return manage("check", "--deploy", "--fail-level", "WARNING", **overrides)


def test_production_settings_from_the_environment_pass_the_deploy_check(role_database):
    # As deployed: connected as the runtime role docs/deployment.md makes (the deploy check
    # warns about a superuser, which the suite's own DATABASE_URL is).
    result = check_deploy(DATABASE_URL=role_database.app_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "warning"),
    [
        ("SECURE_HSTS_SECONDS", "0", "security.W004"),
        ("SECURE_SSL_REDIRECT", "false", "security.W008"),
        ("SESSION_COOKIE_SECURE", "false", "security.W012"),
        ("CSRF_COOKIE_SECURE", "false", "security.W016"),
        ("SECRET_KEY", "short-and-weak", "security.W009"),
    ],
)
def test_switching_a_protection_off_is_caught_by_the_deploy_check(variable, value, warning):
    result = check_deploy(**{variable: value})

    assert result.returncode != 0
    assert warning in result.stderr


def test_a_proxy_ssl_header_that_is_no_header_name_stops_start_up():
    result = check_deploy(GATEKEEPER_PROXY_SSL_HEADER="X-Forwarded-Proto: https")

    assert result.returncode != 0
    assert "GATEKEEPER_PROXY_SSL_HEADER" in result.stderr.splitlines()[-1]


def test_a_checkpoint_receiver_on_an_internal_address_is_caught_by_the_deploy_check(
    role_database,
):
    refused = check_deploy(
        DATABASE_URL=role_database.app_url,
        GATEKEEPER_AUDIT_CHECKPOINT_URL="http://169.254.169.254/checkpoints",
        GATEKEEPER_AUDIT_CHECKPOINT_SECRET="checkpoint-secret-0123456789",
    )
    assert refused.returncode != 0 and "gatekeeper.W005" in refused.stderr
    assert "refused address 169.254.169.254: link-local" in refused.stderr

    listed = check_deploy(
        DATABASE_URL=role_database.app_url,
        GATEKEEPER_AUDIT_CHECKPOINT_URL="http://10.20.0.5/checkpoints",
        GATEKEEPER_AUDIT_CHECKPOINT_SECRET="checkpoint-secret-0123456789",
        GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS="10.20.0.0/16",
    )
    assert listed.returncode == 0, listed.stderr
