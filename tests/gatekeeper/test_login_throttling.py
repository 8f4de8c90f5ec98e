"""Sign-in throttling: a few failures lock an account at the address they came from for an hour,
many more lock the account from everywhere (or the address for every account) for a quarter of
an hour, admins can unlock, and every sign-in, failure and lockout is in the decision record
(never a password)."""

import json
import re
import threading
from datetime import datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.gatekeeper.test_settings_from_environment import start

LOGIN = "/accounts/login/"
LOCKED = re.compile(
    r"Too many failed attempts: try again after (\d\d:\d\d) UTC or ask an admin to unlock you\."
)


def attempt(client, username, password, ip="10.0.0.1", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def fail(client, username, times, ip="10.0.0.1"):
    for _ in range(times):
        response = attempt(client, username, "wrong-password", ip=ip)
    return response


def kinds():
    return list(AuditEvent.objects.filter(kind__startswith="auth.").values_list("kind", flat=True))


def test_four_failures_leave_the_account_open(client, alice):
    response = fail(client, "alice", 4)

    assert response.status_code == 200 and b"Please enter a correct username" in response.content
    assert attempt(client, "alice", "pw-alice").status_code == 302


def test_the_fifth_failure_locks_the_account_and_says_until_when(client, alice):
    response = fail(client, "alice", 5)

    assert response.status_code == 429
    shown = LOCKED.search(response.content.decode())
    assert shown, response.content.decode()
    last = AccessAttempt.objects.get(username="alice").attempt_time
    until = (last + timedelta(hours=1, minutes=1)).replace(second=0, microsecond=0)
    assert shown.group(1) == f"{until:%H:%M}"
    assert 3500 <= int(response["Retry-After"]) <= 3660
    # The page is the login form again, with the name kept and a fresh CSRF token.
    assert b'value="alice"' in response.content and b"csrfmiddlewaretoken" in response.content


def test_while_locked_even_the_right_password_is_refused_unread(client, alice):
    fail(client, "alice", 5)

    response = attempt(client, "alice", "pw-alice")

    assert response.status_code == 429 and LOCKED.search(response.content.decode())
    assert "_auth_user_id" not in client.session
    # A refused attempt is not counted: the lock still ends when it said.
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 5


def test_a_strangers_failures_from_another_address_leave_the_owner_signing_in(client, alice):
    fail(Client(), "alice", 8, ip="203.0.113.9")

    assert attempt(client, "alice", "pw-alice", ip="10.0.0.1").status_code == 302
    # The stranger's address is locked for alice, even with her password.
    assert attempt(Client(), "alice", "pw-alice", ip="203.0.113.9").status_code == 429


def test_the_same_address_is_locked_after_the_limit_and_no_other(client, alice):
    assert fail(client, "alice", 5, ip="10.0.0.1").status_code == 429

    assert attempt(client, "alice", "pw-alice", ip="10.0.0.1").status_code == 429
    assert attempt(Client(), "alice", "pw-alice", ip="10.0.0.2").status_code == 302


def test_the_ceiling_locks_the_account_from_every_address_for_a_quarter_hour(client, alice, bob):
    # Twenty guesses from five addresses, each staying under its own limit.
    for n in range(20):
        attempt(Client(), "alice", "wrong-password", ip=f"10.0.1.{n % 5}")

    response = attempt(client, "alice", "pw-alice", ip="10.0.2.1")
    assert response.status_code == 429 and LOCKED.search(response.content.decode())
    assert 840 <= int(response["Retry-After"]) <= 960
    # Other accounts on those addresses are not affected.
    assert attempt(Client(), "bob", "pw-bob", ip="10.0.1.1").status_code == 302


def test_below_the_ceiling_the_account_stays_open_elsewhere(client, alice):
    for n in range(19):
        attempt(Client(), "alice", "wrong-password", ip=f"10.0.1.{n % 5}")

    assert attempt(client, "alice", "pw-alice", ip="10.0.2.1").status_code == 302


def test_the_ceiling_lockout_is_recorded_naming_the_account_lock(client, alice):
    for n in range(20):
        attempt(Client(), "alice", "wrong-password", ip=f"10.0.1.{n % 5}")

    locked = AuditEvent.objects.get(kind="auth.locked_out")
    assert locked.data["locked"] == ["account"]
    assert locked.data["username"] == "alice"
    # It lifts when the earliest of the five addresses' latest guesses leaves the window.
    earliest = AccessAttempt.objects.order_by("attempt_time").first().attempt_time
    until = datetime.fromisoformat(locked.data["until"])
    assert abs(until - (earliest + timedelta(minutes=15))) < timedelta(milliseconds=1)


def test_an_address_guessing_at_many_accounts_is_locked_for_every_account(client, alice, bob):
    for n in range(20):
        attempt(client, f"user{n}", "wrong-password", ip="10.0.3.3")

    assert attempt(client, "alice", "pw-alice", ip="10.0.3.3").status_code == 429
    # The same person from elsewhere is let in.
    assert attempt(Client(), "alice", "pw-alice", ip="10.0.4.4").status_code == 302


def test_the_ceilings_window_is_shorter_than_the_pairs(client, alice, settings):
    for n in range(20):
        attempt(Client(), "alice", "wrong-password", ip=f"10.0.1.{n % 4}")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=5))

    assert attempt(client, "alice", "pw-alice", ip="10.0.2.1").status_code == 302
    # Each of those addresses made five guesses: still locked out of alice for the hour.
    assert attempt(Client(), "alice", "pw-alice", ip="10.0.1.1").status_code == 429


def test_the_lock_lifts_when_the_hour_has_passed(client, alice):
    fail(client, "alice", 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1, seconds=5))

    assert attempt(client, "alice", "pw-alice").status_code == 302


def test_an_admin_unlocks_an_account_by_deleting_its_attempts(client, alice, admin_client):
    fail(client, "alice", 5)
    changelist = reverse("admin:axes_accessattempt_changelist")

    listed = admin_client.get(changelist)
    assert listed.status_code == 200 and b"alice" in listed.content
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    confirm = admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert confirm.status_code == 302
    assert not AccessAttempt.objects.exists()

    assert attempt(client, "alice", "pw-alice").status_code == 302


def test_the_admin_lists_lockouts_and_login_history(admin_client):
    for name in ("accessattempt", "accesslog", "accessfailurelog"):
        assert admin_client.get(reverse(f"admin:axes_{name}_changelist")).status_code == 200


def test_the_admin_login_is_the_same_throttled_door(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/admin/"


def test_a_sign_in_is_recorded_with_the_address(client, alice):
    attempt(client, "alice", "pw-alice", ip="10.9.8.7")

    event = AuditEvent.objects.get(kind="auth.login")
    assert event.actor == "user:alice"
    assert event.data == {"ip": "10.9.8.7"}


def test_a_failure_is_recorded_with_the_username_and_never_the_password(client, alice):
    attempt(client, "alice", "Correct-Horse-Battery", ip="10.9.8.7")

    event = AuditEvent.objects.get(kind="auth.login_failed")
    assert event.actor == "anonymous"
    assert event.data == {"username": "alice", "ip": "10.9.8.7"}
    everything = json.dumps(list(AuditEvent.objects.values()), default=str)
    everything += json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert "Correct-Horse-Battery" not in everything


def test_a_name_that_is_no_account_stays_out_of_the_record(client, alice):
    # Someone typed their password into the username box.
    attempt(client, "My-Secret-Passphrase", "alice")

    event = AuditEvent.objects.get(kind="auth.login_failed")
    assert event.data["username"] is None
    assert "My-Secret-Passphrase" not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_the_lockout_is_recorded_once_right_after_the_failure_that_caused_it(client, alice):
    fail(client, "alice", 5)
    fail(client, "alice", 3)  # refused while locked: not recorded
    attempt(client, "alice", "pw-alice")  # refused too

    assert kinds() == ["auth.login_failed"] * 5 + ["auth.locked_out"]
    locked = AuditEvent.objects.get(kind="auth.locked_out")
    assert locked.actor == "system"
    assert locked.data["username"] == "alice"
    assert locked.data["ip"] == "10.0.0.1"
    assert locked.data["locked"] == ["account_at_address"]
    last = AccessAttempt.objects.get(username="alice").attempt_time
    until = datetime.fromisoformat(locked.data["until"])
    assert abs(until - (last + timedelta(hours=1))) < timedelta(milliseconds=1)


def test_the_api_is_not_behind_the_login_throttle(client, alice, agent):
    for _ in range(20):
        response = client.get(
            "/api/v1/executions/x", headers={"Authorization": "Bearer gk_wrong-token-wrong"}
        )
        assert response.status_code == 401
    assert not AccessAttempt.objects.exists()
    assert attempt(client, "alice", "pw-alice").status_code == 302


@pytest.mark.parametrize(
    "body",
    [
        "username=a%00b&password=x",
        "username=" + "x" * 100_000 + "&password=x",
        "username=x&password=" + "p" * 100_000,
        "username=%ED%A0%80%FF&password=%00",
        "username=alice&username=bob&password=pw-alice",
        "password=pw-alice",
    ],
    ids=["nul", "long name", "long password", "bad utf-8", "two names", "no name"],
)
def test_hostile_login_bodies_are_form_errors_not_server_errors(client, alice, body):
    response = client.post(LOGIN, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db(transaction=True)
def test_guesses_arriving_at_once_are_counted_one_by_one(alice, settings):
    """Without serialising, every parallel guess would pass the check before any was counted."""
    settings.GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT = 5
    # A real (slow) hash, so that the guesses really overlap.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    alice.set_password("pw-alice")
    alice.save()
    guesses = 10
    barrier = threading.Barrier(guesses)
    statuses = []

    def guess(n):
        try:
            barrier.wait()
            statuses.append(attempt(Client(), "alice", f"guess-{n}", ip=f"10.1.0.{n}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(statuses) == [200] * 4 + [429] * 6
    assert sum(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == 5
    assert kinds().count("auth.login_failed") == 5


@pytest.mark.parametrize(
    ("limit", "seconds"),
    [("21", None), ("5", "60"), ("20", "600")],
)
def test_settings_that_would_allow_over_100_guesses_an_hour_refuse_to_start(limit, seconds):
    result = start(
        GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT=limit,
        GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS=seconds,
    )

    assert result.returncode != 0
    assert "at most 100 are allowed" in result.stderr.splitlines()[-1]


def test_a_ceiling_below_the_per_address_limit_refuses_to_start():
    result = start(GATEKEEPER_LOGIN_FAILURE_LIMIT="10", GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT="8")

    assert result.returncode != 0
    assert "must be at least GATEKEEPER_LOGIN_FAILURE_LIMIT" in result.stderr.splitlines()[-1]
