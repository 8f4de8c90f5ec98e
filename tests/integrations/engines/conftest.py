"""Durable engines against a live Gatekeeper: real HTTP, real signed webhooks, a real relay.

Webhooks go out through the server's own outbox delivery (`outbox.deliver`, what the Celery
task runs) to a `gatekeeper_client.relay` server on loopback; only the reviewers are simulated
(service calls, as the review page makes them).
"""

import ipaddress
import socket
import threading

import pytest
from django.db import close_old_connections
from django.utils import timezone
from gatekeeper_client import GatekeeperClient
from gatekeeper_client.relay import Relay, RelayStore, server

from approvals.channels import webhook as webhook_channel
from approvals.models import Execution, OutboxMessage, PausePacket, StepOutcome
from approvals.selectors.executions import execution_steps
from approvals.services import outbox
from approvals.services.policies import policies_import
from approvals.services.service_accounts import service_account_create
from tests.conftest import groups_named_by

WORKFLOW = "hr-onboarding"
POLICIES = [
    {"name": "lookups", "priority": 50, "match": {"tool": "hr.lookup"}, "effect": "allow"},
    {
        "name": "privileged-iam",
        "priority": 10,
        "match": {"workflow": "hr-*", "tool": "iam.*"},
        "effect": "require_approval",
        "approvers": "it-approvers",
        "allow_edit": True,
    },
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunningRelay:
    """A relay server in a thread, its store, and the service account whose webhooks it gets."""

    def __init__(self, store_path, handlers, account, token):
        self.store = RelayStore(str(store_path))
        self.relay = Relay(account.webhook_secret, self.store, handlers)
        self.httpd = server(self.relay)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks"
        self.account, self.token = account, token
        account.callback_url = self.url
        account.save(update_fields=["callback_url"])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def engine_setup(live_server, settings, make_user, tmp_path):
    """Policies, a reviewer `alice`, and `start_relay(handlers)` -> RunningRelay."""
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    groups_named_by(*POLICIES)
    policies_import(documents=POLICIES, actor="test")
    relays = []

    def start_relay(handlers) -> RunningRelay:
        account, token = service_account_create(name=f"engine-{len(relays)}")
        relays.append(RunningRelay(tmp_path / "relay.sqlite", handlers, account, token))
        return relays[-1]

    yield make_user("alice", "it-approvers"), start_relay
    for relay in relays:
        relay.close()


def gk_for(live_server, token) -> GatekeeperClient:
    return GatekeeperClient(live_server.url, token, backoff=0.01, timeout=10)


def deliver_webhooks() -> list[str]:
    """Send every due webhook now, as the outbox worker would: what each delivery did."""
    close_old_connections()
    due = OutboxMessage.objects.filter(
        kind=webhook_channel.KIND, status=OutboxMessage.Status.PENDING
    ).order_by("created_at")
    return [outbox.deliver(message.id) for message in due]


def deliver_until_sent(attempts: int = 10) -> list[str]:
    """Deliver, and retry what failed at once instead of after the outbox's backoff."""
    results = []
    for _ in range(attempts):
        results += deliver_webhooks()
        if results[-1:] == ["sent"]:
            return results
        OutboxMessage.objects.filter(
            kind=webhook_channel.KIND, status=OutboxMessage.Status.PENDING
        ).update(next_attempt_at=timezone.now())
    raise AssertionError(f"not delivered: {results}")


def pending_packet(thread_id: str) -> PausePacket | None:
    """The execution's pending packet, as committed now (other threads and processes make it)."""
    close_old_connections()
    return PausePacket.objects.filter(execution__thread_id=thread_id, status="pending").first()


def recorded_outcomes(thread_id: str) -> list[tuple[int, str]]:
    """Every outcome recorded for the execution, in order (a replay must add none), once the
    execution's record has no gap."""
    close_old_connections()
    _steps, gaps = execution_steps(Execution.objects.get(thread_id=thread_id))
    assert gaps == []
    outcomes = StepOutcome.objects.filter(execution__thread_id=thread_id).order_by("created_at")
    return list(outcomes.values_list("step_index", "side_effect"))
