"""/metrics/prometheus: the SLA figures in Prometheus' text format, behind a bearer token."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import PausePacket
from approvals.services.expiry import packets_expire_overdue
from approvals.services.review import packet_approve
from tests.gatekeeper.test_settings_from_environment import start

TOKEN = "scrape-me-0123456789abcdef"
URL = "/metrics/prometheus"


@pytest.fixture
def enabled(settings):
    settings.GATEKEEPER_METRICS_TOKEN = TOKEN


def _scrape(client, token=TOKEN, **params):
    return client.get(URL, params, headers={"Authorization": f"Bearer {token}"})


def _families(response) -> dict:
    return {
        family.name: family for family in text_string_to_metric_families(response.content.decode())
    }


def _samples(family, name=None) -> dict:
    """{(label values...): value} for one family's samples, optionally of one sample name."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if name is None or sample.name == name
    }


def _decided(packet, *, latency: float, at):
    PausePacket.objects.filter(id=packet.id).update(
        created_at=at - timedelta(seconds=latency), decided_at=at
    )


def _expire(packet):
    past = timezone.now() - timedelta(hours=1)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )
    assert packets_expire_overdue() == 1


@pytest.fixture
def known(packet_for, alice):
    """hr-onboarding: one pending, one in re-review. payments, decided a minute ago:
    allowed after 30 s, 90 s, 1000 s and 90000 s, expired after 7200 s; and one expired
    30 days ago, outside the 14-day latency window but counted among all expiries."""
    packet_for(execution__thread_id="hr-1")
    waiting = packet_for(execution__thread_id="hr-2")
    PausePacket.objects.filter(id=waiting.id).update(status="re_review")
    at = timezone.now() - timedelta(minutes=1)
    for index, latency in enumerate((30, 90, 1000, 90_000)):
        packet = packet_for(execution__thread_id=f"pay-{index}", execution__workflow="payments")
        packet_approve(packet_id=packet.id, user=alice)
        _decided(packet, latency=latency, at=at)
    recent = packet_for(execution__thread_id="pay-late", execution__workflow="payments")
    _expire(recent)
    _decided(recent, latency=7200, at=at)
    old = packet_for(execution__thread_id="pay-old", execution__workflow="payments")
    _expire(old)
    _decided(old, latency=7200, at=at - timedelta(days=30))


def test_switched_off_when_no_token_is_configured(client, db, settings):
    settings.GATEKEEPER_METRICS_TOKEN = None
    assert _scrape(client).status_code == 404


def test_a_short_token_stops_start_up_naming_the_variable():
    result = start(GATEKEEPER_METRICS_TOKEN="too-short")
    assert result.returncode != 0
    assert "GATEKEEPER_METRICS_TOKEN" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer é"],
)
def test_a_missing_or_wrong_token_is_401_with_a_bearer_challenge(
    client, db, enabled, authorization
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_session_is_not_enough(client, alice, enabled):
    client.force_login(alice)
    assert client.get(URL).status_code == 401


def test_wrong_method_is_405(client, db, enabled):
    response = client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


def test_the_right_token_gets_the_text_format(client, enabled, known):
    response = _scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert set(_families(response)) == {
        "gatekeeper_open_packets",
        "gatekeeper_packets_expired",
        "gatekeeper_decision_latency_seconds",
        "gatekeeper_outbox_backlog",
        "gatekeeper_webhook_failures",
    }


def test_values_match_the_packets(client, enabled, known):
    families = _families(_scrape(client))
    assert families["gatekeeper_open_packets"].type == "gauge"
    assert _samples(families["gatekeeper_open_packets"]) == {
        (("status", "pending"), ("workflow", "hr-onboarding")): 1,
        (("status", "re_review"), ("workflow", "hr-onboarding")): 1,
    }
    expired = families["gatekeeper_packets_expired"]
    assert expired.type == "counter"
    assert _samples(expired, "gatekeeper_packets_expired_total") == {(("workflow", "payments"),): 2}
    latency = families["gatekeeper_decision_latency_seconds"]
    assert latency.type == "histogram"
    buckets = {
        dict(labels)["le"]: value
        for labels, value in _samples(latency, "gatekeeper_decision_latency_seconds_bucket").items()
    }
    # Latencies 30, 90, 1000, 7200 and 90000 s; the expiry of 30 days ago is outside the window.
    assert buckets == {
        "60.0": 1,
        "300.0": 2,
        "900.0": 2,
        "1800.0": 3,
        "3600.0": 3,
        "14400.0": 4,
        "86400.0": 4,
        "+Inf": 5,
    }
    payments = (("workflow", "payments"),)
    assert _samples(latency, "gatekeeper_decision_latency_seconds_count") == {payments: 5}
    assert _samples(latency, "gatekeeper_decision_latency_seconds_sum")[payments] == (
        pytest.approx(30 + 90 + 1000 + 7200 + 90_000)
    )


def test_histogram_buckets_are_cumulative(client, enabled, known, packet_for, alice):
    for index, latency in enumerate((5, 61, 299, 301, 3601, 86_401)):
        packet = packet_for(execution__thread_id=f"hr-done-{index}")
        packet_approve(packet_id=packet.id, user=alice)
        _decided(packet, latency=latency, at=timezone.now())
    latency = _families(_scrape(client))["gatekeeper_decision_latency_seconds"]
    by_workflow: dict[str, list] = {}
    counts = {}
    for sample in latency.samples:
        workflow = sample.labels["workflow"]
        if sample.name.endswith("_bucket"):
            le = sample.labels["le"]
            by_workflow.setdefault(workflow, []).append((float(le), sample.value))
        elif sample.name.endswith("_count"):
            counts[workflow] = sample.value
    assert set(by_workflow) == {"hr-onboarding", "payments"}
    for workflow, buckets in by_workflow.items():
        edges = [edge for edge, _ in buckets]
        values = [value for _, value in buckets]
        assert edges == sorted(edges) and edges[-1] == float("inf")
        assert values == sorted(values), workflow
        assert values[-1] == counts[workflow]
    assert [value for _, value in by_workflow["hr-onboarding"]] == [1, 3, 4, 4, 4, 5, 5, 6]


def test_days_widens_the_latency_window(client, enabled, known):
    latency = _families(_scrape(client, days="60"))["gatekeeper_decision_latency_seconds"]
    count = _samples(latency, "gatekeeper_decision_latency_seconds_count")
    assert count == {(("workflow", "payments"),): 6}


@pytest.mark.parametrize("days", ["0", "91", "week"])
def test_a_bad_days_value_is_400_not_a_guess(client, db, enabled, days):
    response = _scrape(client, days=days)
    assert response.status_code == 400
    assert b"days must be a whole number" in response.content


def test_every_scrape_reads_the_database_in_three_queries(client, enabled, known, packet_for):
    with CaptureQueriesContext(connection) as queries:
        first = _families(_scrape(client))
    assert len(queries) == 3, "\n".join(q["sql"] for q in queries.captured_queries)
    packet_for(execution__thread_id="hr-3")
    second = _families(_scrape(client))
    pending = (("status", "pending"), ("workflow", "hr-onboarding"))
    assert _samples(first["gatekeeper_open_packets"])[pending] == 1
    assert _samples(second["gatekeeper_open_packets"])[pending] == 2


def test_an_empty_database_exports_empty_families_and_an_empty_outbox(client, db, enabled):
    families = _families(_scrape(client))
    outbox = {"gatekeeper_outbox_backlog", "gatekeeper_webhook_failures"}
    assert all(not f.samples for name, f in families.items() if name not in outbox)
    assert all(s.value == 0 for name in outbox for s in families[name].samples)


def test_the_outbox_backlog_and_webhook_failures_are_counted(client, enabled, packet_for, alice):
    from approvals.models import OutboxMessage
    from approvals.services.service_accounts import service_account_create

    packet_for()  # emails to alice: one pending message
    hooked, _ = service_account_create(name="hooked", callback_url="https://hooks.example.com/")
    OutboxMessage.objects.create(
        kind="webhook",
        topic="approval.decided",
        service_account=hooked,
        recipient=hooked.callback_url,
        status="failed",
        next_attempt_at=timezone.now(),
    )
    families = _families(_scrape(client))
    backlog = {
        dict(s.labels)["kind"]: s.value for s in families["gatekeeper_outbox_backlog"].samples
    }
    assert backlog == {"email": 1, "webhook": 0}
    assert families["gatekeeper_webhook_failures"].samples[0].value == 1
