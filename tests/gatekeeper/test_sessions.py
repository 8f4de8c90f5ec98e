"""Sessions end after inactivity (the pages' own polling is not activity) and on a password
change, everywhere at once."""

import time
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.gatekeeper.test_settings_from_environment import start

HTMX = {"HX-Request": "true"}


def expiry(client) -> timezone.datetime:
    return Session.objects.get(session_key=client.session.session_key).expire_date


def age_session(client, by: timedelta) -> None:
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=expiry(client) - by
    )


def test_a_session_lasts_eight_idle_hours_by_default():
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is False


def test_the_idle_time_comes_from_the_environment_and_is_checked():
    assert start(GATEKEEPER_SESSION_IDLE_SECONDS="900").returncode == 0
    refused = start(GATEKEEPER_SESSION_IDLE_SECONDS="soon")
    assert refused.returncode != 0
    assert "GATEKEEPER_SESSION_IDLE_SECONDS" in refused.stderr.splitlines()[-1]


def test_a_page_load_renews_the_session(client, alice):
    client.force_login(alice)
    age_session(client, timedelta(hours=1))
    before = expiry(client)

    with mock.patch("gatekeeper.security.time.time", return_value=time.time() + 61):
        assert client.get("/approvals/").status_code == 200

    assert expiry(client) > before + timedelta(minutes=59)
    assert client.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 8 * 3600


def test_a_renewal_is_written_at_most_once_a_minute(client, alice):
    client.force_login(alice)  # logging in counts as the first renewal
    age_session(client, timedelta(minutes=30))
    before = expiry(client)

    client.get("/approvals/")
    assert expiry(client) == before

    with mock.patch("gatekeeper.security.time.time", return_value=time.time() + 61):
        client.get("/approvals/")
    assert expiry(client) > before + timedelta(minutes=29)


def test_the_pages_own_polling_does_not_keep_the_session_alive(client, alice):
    client.force_login(alice)
    age_session(client, timedelta(hours=1))
    before = expiry(client)

    assert client.get("/approvals/open-count/", headers=HTMX).status_code == 200
    assert client.get("/approvals/", headers=HTMX).status_code == 200

    assert expiry(client) == before


def test_an_action_renews_the_session(client, alice, packet_for):
    packet = packet_for()
    client.force_login(alice)
    age_session(client, timedelta(hours=1))
    before = expiry(client)

    with mock.patch("gatekeeper.security.time.time", return_value=time.time() + 61):
        client.post(f"/approvals/{packet.id}/comment/", {"comment": "still here"}, headers=HTMX)

    assert expiry(client) > before + timedelta(minutes=59)


def test_after_eight_idle_hours_the_next_page_asks_to_log_in(client, alice):
    client.force_login(alice)
    age_session(client, timedelta(hours=8, seconds=1))

    response = client.get("/approvals/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_poll_after_the_session_ended_reloads_the_page_instead_of_swapping_in_the_login(
    client, alice
):
    client.force_login(alice)
    age_session(client, timedelta(hours=8, seconds=1))

    response = client.get("/approvals/open-count/", headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert response.content == b""


def test_a_password_change_ends_every_session_of_that_user(alice, bob):
    laptop, phone, colleague = Client(), Client(), Client()
    laptop.force_login(alice)
    phone.force_login(alice)
    colleague.force_login(bob)
    for client in (laptop, phone, colleague):
        assert client.get("/approvals/").status_code == 200

    alice.set_password("a-new-and-long-passphrase")
    alice.save()

    for client in (laptop, phone):
        response = client.get("/approvals/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert colleague.get("/approvals/").status_code == 200


def test_the_password_change_in_admin_ends_the_users_other_sessions(admin_client, alice):
    other = Client()
    other.force_login(alice)

    response = admin_client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": "a-new-and-long-passphrase", "password2": "a-new-and-long-passphrase"},
    )

    assert response.status_code == 302
    assert other.get("/approvals/").status_code == 302
