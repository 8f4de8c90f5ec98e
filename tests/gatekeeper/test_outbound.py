"""Callback URLs reach only public addresses unless the operator lists a network (DESIGN 6)."""

import ipaddress

import pytest

from gatekeeper import outbound

INTERNAL = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.9.9.9:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one decimal number
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://0x7f.1/hook", "loopback"),  # hexadecimal, two parts
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "private"),  # reserved, and listed by Python among the private
    ("http://100.64.0.1/", "not public"),  # carrier-grade NAT
]


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = []
    return settings


@pytest.mark.parametrize(("url", "reason"), INTERNAL, ids=[url for url, _ in INTERNAL])
def test_internal_addresses_are_refused_in_production(production, url, reason):
    problem = outbound.url_problem(url)
    assert problem is not None and f": {reason}, and not in" in problem
    with pytest.raises(outbound.RefusedDestination, match="refused address"):
        outbound.destination(url)


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/hook", "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/"]
)
def test_public_addresses_are_accepted(production, url):
    assert outbound.url_problem(url) is None
    assert outbound.destination(url).addresses


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://93.184.215.14/hook", "must be an http or https URL"),
        ("file:///etc/passwd", "must be an http or https URL"),
        ("gopher://93.184.215.14/", "must be an http or https URL"),
        ("https:///no-host", "has no host"),
        ("https://user:pw@93.184.215.14/", "must not hold a user name or password"),
        ("https://93.184.215.14:99999/", "is not a valid URL"),
    ],
)
def test_only_plain_http_and_https_urls_are_accepted(production, url, problem):
    assert outbound.url_problem(url) == problem


def test_a_listed_network_is_allowed_and_nothing_else(production):
    production.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00:20::/64"),
    ]
    assert outbound.url_problem("http://10.20.3.4/hook") is None
    assert outbound.url_problem("http://[::ffff:10.20.3.4]/hook") is None
    assert outbound.url_problem("http://[fd00:20::5]/hook") is None
    assert "private" in outbound.url_problem("http://10.21.0.1/hook")
    assert "link-local" in outbound.url_problem("http://169.254.169.254/")


def test_with_debug_on_loopback_is_allowed_but_nothing_else_internal(settings):
    settings.DEBUG = True
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = []
    assert outbound.url_problem("http://127.0.0.1:8000/hook") is None
    assert outbound.url_problem("http://[::1]/hook") is None
    assert "link-local" in outbound.url_problem("http://169.254.169.254/")
    assert "private" in outbound.url_problem("http://192.168.1.1/")


def test_every_address_a_name_resolves_to_is_checked(production, monkeypatch):
    # The resolver is the outside world: a name that answers one public and one internal address.
    monkeypatch.setattr(
        outbound.socket,
        "getaddrinfo",
        lambda host, port, **kw: [
            (2, 1, 6, "", ("93.184.215.14", port)),
            (2, 1, 6, "", ("169.254.169.254", port)),
        ],
    )
    problem = outbound.url_problem("https://hooks.example.com/gk")
    assert problem == (
        "refused address 169.254.169.254 (hooks.example.com resolves to it): link-local, "
        "and not in GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS"
    )


def test_a_name_that_does_not_resolve_is_accepted_when_set_and_refused_at_delivery(production):
    url = "https://gatekeeper-hooks.invalid/gk"  # .invalid never resolves (RFC 2606)
    assert outbound.url_problem(url) is None
    with pytest.raises(outbound.RefusedDestination, match="could not resolve"):
        outbound.destination(url)


@pytest.mark.parametrize("host", ["a\x00b.example", "x" * 64 + ".example", "\udcff.example"])
def test_a_host_no_resolver_can_read_is_unresolvable_not_an_error(production, host):
    assert outbound.url_problem(f"https://{host}/hook") is None
    with pytest.raises(outbound.RefusedDestination, match="could not resolve"):
        outbound.destination(f"https://{host}/hook")
