"""The two database roles of docs/deployment.md: the owner migrates, the runtime role serves and
cannot switch off the decision record's triggers; `check --deploy` tells them apart."""

import psycopg
import pytest

from tests.gatekeeper.test_security_headers import check_deploy, manage


def test_the_runtime_role_passes_the_deploy_check(role_database):
    result = check_deploy(DATABASE_URL=role_database.app_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gatekeeper.W" not in result.stdout + result.stderr


def test_the_owner_role_is_warned_about(role_database):
    result = check_deploy(DATABASE_URL=role_database.owner_url)
    assert result.returncode != 0
    assert "gatekeeper.W002" in result.stderr
    assert f"The database role {role_database.owner} owns audit_auditevent" in result.stderr


def test_a_superuser_is_warned_about(role_database):
    result = check_deploy(DATABASE_URL=role_database.superuser_url)
    assert result.returncode != 0 and "gatekeeper.W001" in result.stderr


def test_a_role_that_may_act_as_the_owner_is_warned_about(role_database):
    with psycopg.connect(role_database.superuser_url, autocommit=True) as connection:
        connection.execute(f"GRANT {role_database.owner} TO {role_database.app}")
        try:
            result = check_deploy(DATABASE_URL=role_database.app_url)
        finally:
            connection.execute(f"REVOKE {role_database.owner} FROM {role_database.app}")
    assert result.returncode != 0 and "gatekeeper.W002" in result.stderr


def test_an_unreachable_database_is_said_so(role_database):
    result = check_deploy(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert result.returncode != 0 and "gatekeeper.W004" in result.stderr


def test_the_runtime_role_serves_but_cannot_touch_the_record(role_database):
    made = manage("create_service_account", "crew", DATABASE_URL=role_database.app_url)
    assert made.returncode == 0, made.stderr
    recorded = manage(
        "shell",
        "-c",
        "from django.db import transaction\n"
        "from audit.services import record_event\n"
        "with transaction.atomic(): record_event('step.outcome', actor='service:crew')",
        DATABASE_URL=role_database.app_url,
    )
    assert recorded.returncode == 0, recorded.stderr
    verified = manage("verify_audit", DATABASE_URL=role_database.app_url)
    assert verified.returncode == 0 and "checked 1 rows" in verified.stdout, verified.stderr

    for statement, refusal in [
        ("ALTER TABLE audit_auditevent DISABLE TRIGGER USER", "must be owner"),
        ("TRUNCATE audit_auditevent", "permission denied"),
        ("UPDATE audit_auditevent SET actor = 'user:mallory'", "permission denied"),
        ("DELETE FROM audit_auditevent", "permission denied"),
        ("SET session_replication_role = replica", "permission denied"),
    ]:
        with (
            psycopg.connect(role_database.app_url) as connection,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal),
        ):
            connection.execute(statement)
