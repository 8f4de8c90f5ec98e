"""Network errors and 503 are retried with backoff; a resent gate check is not a second check."""

import socket

import pytest
from gatekeeper_client import GatekeeperClient, Unavailable

from approvals.models import GateCheck

GATE = ("onboard-42", "hr-onboarding", 2, "set_privileges", "iam.grant", {"user": "jdoe"})


def test_dropped_connections_and_503_are_retried_until_the_server_answers(gk_account, flaky_proxy):
    proxy = flaky_proxy(["drop", "503", "drop"])
    client = GatekeeperClient(proxy.url, gk_account[1], backoff=0.01)
    decision = client.check(*GATE)
    assert decision.needs_approval
    assert proxy.seen == ["drop", "503", "drop", "forward"]
    assert GateCheck.objects.count() == 1


def test_a_check_whose_answer_was_lost_replays_when_resent(gk_account, flaky_proxy):
    proxy = flaky_proxy(["lost"])
    client = GatekeeperClient(proxy.url, gk_account[1], backoff=0.01)
    decision = client.check(*GATE)
    assert proxy.seen == ["lost", "forward"]
    assert GateCheck.objects.get().id == GateCheck.objects.get(id=decision.check_id).id


def test_long_polls_are_retried_too(gk, gk_account, flaky_proxy, alice, in_background):
    from approvals.services.review import packet_approve

    approval = gk.check(*GATE).approval
    proxy = flaky_proxy(["503", "drop"])
    client = GatekeeperClient(proxy.url, gk_account[1], backoff=0.01)
    in_background(lambda: packet_approve(packet_id=approval.id, user=alice), delay=0.5)
    assert client.wait(approval.id, timeout=10).status == "approved"
    assert proxy.seen[:2] == ["503", "drop"]


def test_a_503_with_retry_after_is_retried_after_that_long_not_after_a_backoff(
    gk_account, flaky_proxy, monkeypatch
):
    from gatekeeper_client import client as client_module

    slept = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    proxy = flaky_proxy(["busy", "503"])
    client = GatekeeperClient(proxy.url, gk_account[1], backoff=10)
    assert client.check(*GATE).needs_approval
    assert slept[0] == 2 and 10 <= slept[1] <= 20


def test_each_long_poll_names_the_status_it_last_saw(gk, gk_account, flaky_proxy):
    approval = gk.check(*GATE).approval
    proxy = flaky_proxy()
    client = GatekeeperClient(proxy.url, gk_account[1], backoff=0.01)
    assert client.wait(approval.id, timeout=2, poll=1).status == "pending"
    assert proxy.paths[0].endswith("?wait=1")
    assert proxy.paths[1].endswith("?wait=1&seen=pending")


def test_the_client_gives_up_after_its_retries(gk_account, flaky_proxy):
    proxy = flaky_proxy(["503"] * 10)
    client = GatekeeperClient(proxy.url, gk_account[1], retries=2, backoff=0.01)
    with pytest.raises(Unavailable) as error:
        client.check(*GATE)
    assert (error.value.status, error.value.code) == (503, "unavailable")
    assert proxy.seen == ["503"] * 3
    assert not GateCheck.objects.exists()


def test_no_server_at_all_is_unavailable_after_the_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = GatekeeperClient(f"http://127.0.0.1:{port}", "gk_x", retries=1, backoff=0.01)
    with pytest.raises(Unavailable) as error:
        client.check(*GATE)
    assert error.value.status is None and "no answer" in error.value.message
