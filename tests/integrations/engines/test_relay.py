"""gatekeeper-relay: verifies each delivery, signals the engine once, 2xx only once it accepted."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from gatekeeper_client.relay import Relay, RelayStore

from approvals import webhooks
from tests.integrations.engines.conftest import free_port
from tests.integrations.engines.recording_engine import RecordingHandler

SECRET = "relay-secret"
APPROVAL = {
    "id": "a-1",
    "status": "approved",
    "decision": "allow",
    "action": {"tool": "iam.grant", "args": {"user": "jdoe"}},
    "decided_by": ["alice"],
    "comment": "",
}


def delivery(
    delivery_id="d-1", event="approval.decided", approval=APPROVAL, *, at=None, secret=SECRET
):
    """Headers and body as the server signs them (approvals.webhooks)."""
    body = webhooks.webhook_body(delivery_id, event, {"approval": approval})
    return {
        "Gatekeeper-Delivery": delivery_id,
        "Gatekeeper-Signature": webhooks.signature(secret, at or int(time.time()), body),
    }, body.encode()


@pytest.fixture
def engine(tmp_path):
    return RecordingHandler(str(tmp_path / "signals.jsonl"))


@pytest.fixture
def relay(tmp_path, engine):
    store = RelayStore(str(tmp_path / "relay.sqlite"))
    store.expect("a-1", "rec", {"run": "r-1"})
    return Relay(SECRET, store, {"rec": engine})


def test_a_decided_approval_signals_the_engine_run_that_waits_on_it(relay, engine):
    assert relay.receive(*delivery()) == (200, {"result": "signalled rec"})
    assert engine.signals() == [{"target": {"run": "r-1"}, "approval": "a-1"}]


def test_a_bad_signature_is_401_and_signals_nothing(relay, engine):
    assert relay.receive(*delivery(secret="another"))[0] == 401
    headers, body = delivery()
    assert relay.receive(headers, body.replace(b"alice", b"mallory"))[0] == 401
    assert engine.signals() == []


def test_a_stale_signature_is_refused_and_signals_nothing(relay, engine):
    assert relay.receive(*delivery(at=int(time.time()) - 301))[0] == 400
    assert engine.signals() == []


def test_a_replayed_or_redelivered_decision_is_answered_200_and_signalled_once(relay, engine):
    assert relay.receive(*delivery("d-1"))[0] == 200
    assert relay.receive(*delivery("d-1")) == (200, {"result": "already received"})
    assert relay.receive(*delivery("d-2")) == (200, {"result": "already signalled (approved)"})
    assert len(engine.signals()) == 1


def test_an_engine_that_refuses_gets_503_and_the_retry_of_that_delivery_signals(relay, engine):
    engine.fail = 1
    status, answer = relay.receive(*delivery("d-1"))
    assert (status, answer["error"]) == (503, "rec did not accept the signal: engine away")
    assert engine.signals() == []
    assert relay.receive(*delivery("d-1"))[0] == 200  # the outbox's retry, same delivery id
    assert len(engine.signals()) == 1


def test_an_approval_no_run_waits_on_yet_is_404_so_the_outbox_retries(relay, engine):
    other = {**APPROVAL, "id": "a-2"}
    assert relay.receive(*delivery("d-1", approval=other))[0] == 404
    relay.store.expect("a-2", "rec", {"run": "r-2"})
    assert relay.receive(*delivery("d-1", approval=other))[0] == 200
    assert engine.signals() == [{"target": {"run": "r-2"}, "approval": "a-2"}]


def test_the_callback_the_webhook_echoes_routes_without_a_recorded_wait(relay, engine):
    echoed = {**APPROVAL, "id": "a-3", "callback": {"engine": "rec", "run": "r-3"}}
    assert relay.receive(*delivery("d-1", approval=echoed)) == (200, {"result": "signalled rec"})
    assert relay.receive(*delivery("d-2", approval=echoed))[0] == 200  # redelivered: once
    assert engine.signals() == [{"target": {"engine": "rec", "run": "r-3"}, "approval": "a-3"}]


def test_a_callback_for_an_engine_the_relay_has_not_is_503(relay, engine):
    echoed = {**APPROVAL, "id": "a-4", "callback": {"engine": "prefect"}}
    status, answer = relay.receive(*delivery("d-1", approval=echoed))
    assert (status, answer) == (503, {"error": "this relay has no handler for engine 'prefect'"})


@pytest.mark.parametrize("status", ["pending", "reconciling", "superseded"])
def test_an_update_that_asks_nothing_of_the_workflow_signals_nothing(relay, engine, status):
    update = {**APPROVAL, "status": status, "decision": None}
    assert relay.receive(*delivery(event="approval.updated", approval=update))[0] == 200
    assert engine.signals() == []
    assert relay.store.open_waits("rec") == [("a-1", {"run": "r-1"})]


def test_an_approval_sent_back_to_review_signals_the_run_once_so_it_reads_its_facts_again(
    relay, engine
):
    stale = {**APPROVAL, "status": "re_review", "decision": None}
    assert relay.receive(*delivery("d-1", "approval.updated", stale)) == (
        200,
        {"result": "signalled rec"},
    )
    assert relay.receive(*delivery("d-2", "approval.updated", stale)) == (
        200,
        {"result": "already signalled (re_review)"},
    )
    assert engine.signals() == [{"target": {"run": "r-1"}, "approval": "a-1"}]


def post(url: str, headers: dict, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_command_serves_a_configured_engine(tmp_path):
    signals, port = tmp_path / "signals.jsonl", free_port()
    store = RelayStore(str(tmp_path / "relay.sqlite"))
    store.expect("a-1", "rec", {"run": "r-1"})
    env = {**os.environ, "GATEKEEPER_WEBHOOK_SECRET": SECRET, "RECORDING_ENGINE_FILE": str(signals)}
    engine = "rec=tests.integrations.engines.recording_engine:recording_handler"
    command = [sys.executable, "-m", "gatekeeper_client.relay", "--port", str(port)]
    relay = subprocess.Popen(
        command + ["--store", store.path, "--engine", engine],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            relay.stdout.readline().strip()
            == f"gatekeeper-relay listening on http://127.0.0.1:{port}"
        )
        url = f"http://127.0.0.1:{port}/"
        assert post(url, *delivery(secret="another")) == 401
        assert post(url, *delivery("d-1")) == 200
        assert post(url, *delivery("d-2")) == 200
    finally:
        relay.terminate()
        relay.wait(10)
    assert RecordingHandler(str(signals)).signals() == [
        {"target": {"run": "r-1"}, "approval": "a-1"}
    ]


def test_the_command_refuses_to_start_without_the_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GATEKEEPER_WEBHOOK_SECRET"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatekeeper_client.relay",
            "--store",
            str(tmp_path / "s"),
            "--engine",
            "temporal",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "set GATEKEEPER_WEBHOOK_SECRET" in run.stderr
