"""The client address failed logins are counted against cannot be chosen by the client."""

import pytest
from django.test import Client, RequestFactory

from gatekeeper.security import client_ip, lockout_ip


def request(remote="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_proxies_x_forwarded_for_is_ignored(settings):
    settings.GATEKEEPER_TRUSTED_PROXIES = 0

    assert client_ip(request(forwarded="1.2.3.4")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        # Whatever the client wrote is on the left; our proxy appended the real peer.
        (1, "1.2.3.4, 5.6.7.8, 198.51.100.7", "198.51.100.7"),
        (2, "1.2.3.4, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        # Fewer entries than proxies, or garbage: the peer address, never the header.
        (2, "198.51.100.7", "203.0.113.9"),
        (1, "not-an-address", "203.0.113.9"),
        (1, "", "203.0.113.9"),
    ],
)
def test_behind_proxies_the_entry_they_appended_is_read(settings, proxies, forwarded, expected):
    settings.GATEKEEPER_TRUSTED_PROXIES = proxies

    assert client_ip(request(forwarded=forwarded)) == expected


def test_ipv6_failures_count_against_the_whole_slash_64(settings):
    settings.GATEKEEPER_TRUSTED_PROXIES = 0

    first = lockout_ip(request(remote="2001:db8:1:2:aaaa::1"))
    second = lockout_ip(request(remote="2001:db8:1:2:ffff:ffff:ffff:ffff"))

    assert first == second == "2001:db8:1:2::"
    assert lockout_ip(request(remote="2001:db8:1:3::1")) == "2001:db8:1:3::"
    assert lockout_ip(request(remote="::ffff:198.51.100.7")) == "198.51.100.7"
    assert lockout_ip(request(remote="198.51.100.7")) == "198.51.100.7"


def test_rotating_a_spoofed_header_does_not_escape_the_address_lock(db, alice, settings):
    settings.GATEKEEPER_TRUSTED_PROXIES = 0
    client = Client()
    for n in range(5):
        client.post(
            "/accounts/login/",
            {"username": "alice", "password": f"guess{n}"},
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )

    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "pw-alice"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )

    assert response.status_code == 429


def test_an_ipv6_attacker_hopping_addresses_in_its_slash_64_stays_locked(db, alice):
    client = Client()
    for n in range(5):
        client.post(
            "/accounts/login/",
            {"username": "alice", "password": f"guess{n}"},
            REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}",
        )

    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "pw-alice"},
        REMOTE_ADDR="2001:db8:1:2::beef",
    )

    assert response.status_code == 429
