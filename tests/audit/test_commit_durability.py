"""When a write to the decision record is durable, and who may learn of it before.

A gate check commits without waiting for the disk under the chain lock, then waits for the
flush before it answers: its caller never hears an answer a crash could take back. Every other
append (an approval, which a long-polling agent reads the moment it commits) commits the
ordinary way, so PostgreSQL shows it to nobody before it is durable.
"""

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals.models import GateCheck
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from audit.models import AuditEvent
from audit.services import record_event
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)
FLUSH = "SELECT pg_current_xact_id()"


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def _sent(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


@pytest.fixture
def post_gate():
    _, token = service_account_create(name="agent")
    client = Client()

    def post(body):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        with CaptureQueriesContext(connection) as captured:
            answer = client.post("/api/v1/gate", body, content_type="application/json", **auth)
        return answer, _sent(captured)

    return post


def test_the_gate_commits_without_waiting_then_answers_after_the_flush(post_gate):
    answer, sent = post_gate(gate_body())
    assert answer.status_code == 200
    assert any("synchronous_commit = off" in sql for sql in sent)
    assert sent[-2:] == ["COMMIT", FLUSH]
    assert sent.count(FLUSH) == 1
    assert _synchronous_commit() == "on"  # SET LOCAL ended with its transaction


def test_a_replayed_gate_check_also_answers_after_the_flush(post_gate):
    body = gate_body()
    first, _ = post_gate(body)
    again, sent = post_gate(body)
    assert again.json() == first.json()
    assert sent[-2:] == ["COMMIT", FLUSH]
    assert GateCheck.objects.count() == 1
    assert AuditEvent.objects.filter(kind="gate.checked").count() == 1


def test_a_refused_gate_check_writes_and_waits_for_nothing(post_gate):
    assert post_gate(gate_body())[0].status_code == 200
    other_workflow = gate_body(execution__workflow="another-flow", step__index=1)
    answer, sent = post_gate(other_workflow)
    assert answer.status_code == 409
    assert FLUSH not in sent
    assert GateCheck.objects.count() == 1


def test_other_appends_commit_the_ordinary_way():
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        record_event("policy.changed", actor="user:admin")
        assert _synchronous_commit() == "on"
    assert FLUSH not in _sent(captured)


def test_an_approval_is_durable_before_anyone_can_read_it(packet_for, alice):
    packet = packet_for()
    with CaptureQueriesContext(connection) as captured:
        packet_approve(packet_id=packet.id, user=alice)
    sent = _sent(captured)
    assert not any("synchronous_commit" in sql for sql in sent)
    assert FLUSH not in sent
