"""Configuration comes from the environment, and a bad value stops start-up naming it."""

import ipaddress
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from gatekeeper.env import env_bool, env_int, env_list, env_networks, parse_database_url

BASE_ENV = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/gatekeeper", "DEBUG": "true"}


def start(**env) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter, as a web or worker process would."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    environment.update(BASE_ENV)
    environment.update(env)
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**environment, "DJANGO_SETTINGS_MODULE": "gatekeeper.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["1", "0", "TRUE", "false", "Yes", "no", ""])
def test_booleans_accept_the_documented_words_in_any_case(monkeypatch, value):
    monkeypatch.setenv("SOME_FLAG", value)
    expected = {
        "1": True,
        "0": False,
        "TRUE": True,
        "false": False,
        "Yes": True,
        "no": False,
        "": None,
    }[value]
    assert env_bool("SOME_FLAG", None) is expected


def test_any_other_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_numbers_are_checked_for_form_and_range(monkeypatch):
    monkeypatch.setenv("N", "abc")
    with pytest.raises(ImproperlyConfigured, match="N must be a whole number"):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 1, minimum=1)


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example, b.example ,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


def test_allowed_networks_are_cidr_networks_or_single_addresses(monkeypatch):
    monkeypatch.setenv("NETS", " 10.20.0.0/16, fd00:20::/64 ,192.0.2.7 ")
    assert env_networks("NETS") == [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00:20::/64"),
        ipaddress.ip_network("192.0.2.7/32"),
    ]
    monkeypatch.setenv("NETS", "")
    assert env_networks("NETS") == []


def test_a_checkpoint_url_without_its_secret_stops_start_up():
    result = start(GATEKEEPER_AUDIT_CHECKPOINT_URL="https://audit.example.com/checkpoints")
    assert result.returncode != 0
    assert "GATEKEEPER_AUDIT_CHECKPOINT_SECRET" in result.stderr.splitlines()[-1]


def test_database_urls_become_django_settings():
    db = parse_database_url(
        "DATABASE_URL", "postgres://u:p%40ss@db.internal:6543/gk?sslmode=require"
    )
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u",
        "p@ss",
        "db.internal",
        "6543",
        "gk",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}
    socket = parse_database_url("DATABASE_URL", "postgresql://postgres:@/gatekeeper?host=/tmp/pg")
    assert socket["HOST"] == "/tmp/pg" and socket["OPTIONS"] == {}


def test_only_postgresql_is_accepted():
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL is the only database"):
        parse_database_url("DATABASE_URL", "sqlite:///db.sqlite3")


def test_a_good_environment_starts():
    result = start()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_missing_secret_key_with_debug_off_refuses_to_start():
    result = start(DEBUG="false", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "perhaps"),
        ("GATEKEEPER_DEFAULT_DECISION", "maybe"),
        ("GATEKEEPER_DEFAULT_REQUIRED_APPROVALS", "zero"),
        ("GATEKEEPER_MAX_REQUEST_BYTES", "-5"),
        ("EMAIL_USE_TLS", "sometimes"),
        ("DATABASE_URL", "mysql://localhost/gk"),
        ("GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8,intranet"),
        ("GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.1/8"),
        ("GATEKEEPER_AUDIT_CHECKPOINT_URL", "ftp://audit.example.com/"),
        ("GATEKEEPER_AUDIT_CHECKPOINT_SECONDS", "5"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value):
    result = start(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr.splitlines()[-1]
