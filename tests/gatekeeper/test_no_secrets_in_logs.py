"""No secret reaches a log line, a URL or the decision record: not an API token, good or bad,
and not a password, whichever box it was typed into."""

import json
import logging
import secrets

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog

from approvals.services.service_accounts import service_account_create
from audit.models import AuditEvent


@pytest.fixture
def everything_logged(caplog, settings):
    settings.DEBUG = True  # the chattiest configuration: ninja and Django say most in DEBUG
    caplog.set_level(logging.DEBUG)
    return caplog


def logged_text(caplog) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''} "
        f"{getattr(record, 'request', '')!r}"
        for record in caplog.records
    )


def test_api_tokens_never_reach_the_logs(client, db, everything_logged):
    _account, good = service_account_create(name="crew")
    bad = "gk_" + secrets.token_urlsafe(32)
    malformed = "not-a-gatekeeper-token-" + secrets.token_urlsafe(16)

    for token in (good, bad, malformed):
        for path in ("/api/v1/executions/x", "/api/v1/approvals/not-a-uuid", "/api/v1/nowhere"):
            client.get(path, headers={"Authorization": f"Bearer {token}"})
        client.post(
            "/api/v1/gate",
            data="{not json",
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert everything_logged.records, "nothing was logged: the test would prove nothing"
    text = logged_text(everything_logged)
    for token in (good, bad, malformed):
        assert token not in text


def test_passwords_never_reach_the_logs_or_any_table(client, alice, everything_logged):
    typed = "Tr0ub4dor&3-" + secrets.token_urlsafe(8)

    for _ in range(6):  # past the lockout, so every path has run
        client.post("/accounts/login/", {"username": "alice", "password": typed})

    stored = json.dumps(
        [
            list(model.objects.values())
            for model in (AuditEvent, AccessAttempt, AccessLog, AccessFailureLog)
        ],
        default=str,
    )
    assert "auth.locked_out" in stored, "the lockout did not happen: the test would prove less"
    assert typed not in logged_text(everything_logged)
    assert typed not in stored


def test_a_password_typed_as_the_username_stays_out_of_the_logs_and_the_record(
    client, alice, everything_logged
):
    in_username_box = "Passphrase-" + secrets.token_urlsafe(8)

    response = client.post("/accounts/login/", {"username": in_username_box, "password": "x"})

    assert response.status_code == 200
    assert AuditEvent.objects.filter(kind="auth.login_failed").exists()
    assert in_username_box not in logged_text(everything_logged)
    assert in_username_box not in json.dumps(list(AuditEvent.objects.values()), default=str)
    # django-axes counts failures per name in its attempts table, which forgets them after the
    # lockout window and which admins can clear; the decision record is forever.
    assert AccessAttempt.objects.filter(username=in_username_box).exists()
