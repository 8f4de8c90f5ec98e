"""Webhook delivery over real sockets: only to checked addresses, no redirects, and failures
that say what failed without repeating what the receiver answered (DESIGN section 6)."""

import json
import socket
import ssl
import subprocess
import threading

import pytest
from django.urls import reverse

from approvals import webhooks
from approvals.channels import webhook as webhook_channel
from approvals.models import OutboxMessage
from approvals.services import outbox
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from gatekeeper import outbound
from tests.background.servers import WebhookReceiver

SECRET = "s3cret"


def _post(url: str, delivery: str = "d1", **kwargs) -> None:
    body = webhooks.webhook_body(delivery, "approval.decided", {"approval": {"id": "a1"}})
    webhooks.post(
        url, event="approval.decided", delivery_id=delivery, body=body, secret=SECRET, **kwargs
    )


@pytest.fixture
def receiver(webhook_receiver):
    webhook_receiver.secret = SECRET
    return webhook_receiver


@pytest.fixture
def decided_webhook(receiver, packet_for, alice) -> OutboxMessage:
    """A real approval's webhook, queued for the receiver, not yet delivered."""
    account, _token = service_account_create(name="hooked", callback_url=receiver.url)
    receiver.secret = account.webhook_secret
    packet_approve(packet_id=packet_for(account=account).id, user=alice)
    return OutboxMessage.objects.get(kind=webhook_channel.KIND)


@pytest.fixture
def resolver(monkeypatch):
    """DNS, the outside world: names answer what the test says, and every lookup is counted."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        addresses = answers[host][min(len(lookups), len(answers[host])) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_a_delivery_to_an_allowed_address_arrives_with_its_id_signed(receiver, decided_webhook):
    assert outbox.deliver(decided_webhook.id) == "sent"
    (hook,) = receiver.items
    assert hook["delivery"] == hook["body"]["id"] == str(decided_webhook.id)


def test_an_internal_address_is_refused_at_delivery_and_nothing_is_sent(
    receiver, decided_webhook, settings
):
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = []  # production, nothing listed

    assert outbox.deliver(decided_webhook.id) == "will retry"

    assert receiver.items == []
    assert OutboxMessage.objects.get(id=decided_webhook.id).last_error == (
        "refused address 127.0.0.1: loopback, and not in GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS"
    )


def test_a_name_that_resolves_elsewhere_after_the_check_is_not_looked_up_again(receiver, resolver):
    """The check and the connection use one lookup: a DNS rebind has no second one to win."""
    answers, lookups = resolver
    answers["hooks.example.test"] = [["127.0.0.1"], ["169.254.169.254"]]

    _post(f"http://hooks.example.test:{receiver.port}/hooks/gatekeeper")

    assert lookups == ["hooks.example.test"]
    (hook,) = receiver.items
    assert hook["host"] == f"hooks.example.test:{receiver.port}"


def test_a_name_resolving_to_any_refused_address_is_not_contacted(receiver, resolver):
    answers, _lookups = resolver
    answers["hooks.example.test"] = [["127.0.0.1", "169.254.169.254"]]

    with pytest.raises(webhooks.DeliveryFailed, match="refused address 169.254.169.254"):
        _post(f"http://hooks.example.test:{receiver.port}/hooks/gatekeeper")
    assert receiver.items == []


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(receiver):
    elsewhere = WebhookReceiver()
    try:
        receiver.answer = (302, {"Location": elsewhere.url}, b"")
        with pytest.raises(webhooks.DeliveryFailed) as failed:
            _post(receiver.url)
        assert str(failed.value) == "answered HTTP 302, a redirect, which is never followed"
        assert elsewhere.items == [] and elsewhere.refused.items == []
    finally:
        elsewhere.close()


def test_an_error_answer_is_named_by_its_status_not_its_body(
    receiver, decided_webhook, admin_client
):
    leaked = b"<h1>Internal error</h1> db password=hunter2 <script>alert(1)</script>"
    receiver.answer = (500, {"Content-Type": "text/html"}, leaked)

    assert outbox.deliver(decided_webhook.id) == "will retry"

    failed = OutboxMessage.objects.get(id=decided_webhook.id)
    assert failed.last_error == "answered HTTP 500"
    change = reverse("admin:approvals_outboxmessage_change", args=[failed.pk])
    page = admin_client.get(change).content.decode()
    assert "answered HTTP 500" in page and "hunter2" not in page


def test_a_receiver_that_does_not_answer_in_time_is_named_as_such(receiver):
    receiver.hang_first = True
    with pytest.raises(webhooks.DeliveryFailed) as failed:
        _post(receiver.url, timeout=0.5)
    assert str(failed.value) == "no answer within 0.5 s"


def test_a_refused_connection_is_named_as_such(receiver):
    with socket.socket() as held:  # bound, never listening: the connection is refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(webhooks.DeliveryFailed) as failed:
            _post(f"http://127.0.0.1:{port}/hook")
    assert str(failed.value) == f"connection refused by 127.0.0.1 port {port}"


def _answer_once(answer: bytes) -> str:
    """Post to a server that reads the whole request, answers `answer` raw, and hangs up."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve():
            connection, _ = server.accept()
            with connection:
                request = b""
                while not request.endswith(b"}}"):  # all of it read: closing sends no reset
                    request += connection.recv(65536)
                connection.sendall(answer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with pytest.raises(webhooks.DeliveryFailed) as failed:
            _post(f"http://127.0.0.1:{server.getsockname()[1]}/hook")
        thread.join(5)
    return str(failed.value)


def test_an_answer_that_is_not_http_is_named_without_quoting_it(receiver):
    failure = _answer_once(b"EVIL payload, click http://evil.example\r\n\r\n")
    assert failure == "the answer was not valid HTTP (BadStatusLine)"


def test_a_receiver_that_hangs_up_without_answering_is_named_as_such(receiver):
    assert _answer_once(b"") == "127.0.0.1 closed the connection without answering"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A test CA and a certificate it signed for hooks.example.test (openssl, as operators do)."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Gatekeeper test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", *key, "-keyout", "hooks.key", "-out", "hooks.csr",
            "-subj", "/CN=hooks.example.test")  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=DNS:hooks.example.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    signed_by_ca = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
    openssl("x509", "-req", "-in", "hooks.csr", *signed_by_ca, "-out", "hooks.pem",
            "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return folder


@pytest.fixture
def tls_receiver(certificates, settings, monkeypatch):
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = [outbound.ipaddress.ip_network("127.0.0.1/32")]
    # The client trusts the test CA the way OpenSSL lets an operator point it at a bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "hooks.pem", certificates / "hooks.key")
    receiver = WebhookReceiver(tls=context)
    receiver.secret = SECRET
    yield receiver
    receiver.close()


def test_https_to_a_checked_address_keeps_the_name_for_sni_host_and_certificate(
    tls_receiver, resolver
):
    answers, _lookups = resolver
    answers["hooks.example.test"] = [["127.0.0.1"]]

    _post(f"https://hooks.example.test:{tls_receiver.port}/hooks/gatekeeper")

    assert tls_receiver.server_names == ["hooks.example.test"]
    (hook,) = tls_receiver.items
    assert hook["host"] == f"hooks.example.test:{tls_receiver.port}"


def test_https_to_a_name_the_certificate_does_not_hold_fails(tls_receiver, resolver):
    answers, _lookups = resolver
    answers["other.example.test"] = [["127.0.0.1"]]

    with pytest.raises(webhooks.DeliveryFailed) as failed:
        _post(f"https://other.example.test:{tls_receiver.port}/hooks/gatekeeper")
    assert str(failed.value) == "the TLS certificate is not valid for other.example.test"
    assert tls_receiver.items == []


def test_a_webhook_queued_before_bodies_carried_their_id_goes_out_with_it(
    receiver, decided_webhook
):
    old_body = json.dumps({"event": "approval.decided", "approval": {"id": "a1"}})
    OutboxMessage.objects.filter(id=decided_webhook.id).update(
        payload={"event": "approval.decided", "body": old_body}
    )

    assert outbox.deliver(decided_webhook.id) == "sent"

    (hook,) = receiver.items
    assert hook["body"] == {
        "id": str(decided_webhook.id),
        "event": "approval.decided",
        "approval": {"id": "a1"},
    }
