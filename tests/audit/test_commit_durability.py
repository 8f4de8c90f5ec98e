"""When a write to the decision record is durable, and who may learn of it before.

A gate check commits without waiting for the disk under the chain lock, then waits for the
flush before it answers: its caller never hears an answer a crash could take back. Every other
append (an approval, which a long-polling agent reads the moment it commits) commits the
ordinary way, so PostgreSQL shows it to nobody before it is durable.

The first test checks the property itself, on a private server whose WAL reaches the disk only
when a commit waits for it; the others check which path each write takes.
"""

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals.models import GateCheck
from approvals.services.review import packet_approve
from approvals.services.service_accounts import service_account_create
from audit.models import AuditEvent
from audit.services import WAIT_FOR_FLUSH_SQL as FLUSH
from audit.services import record_event
from tests.audit.conftest import allowed_body
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)
# Where the commit record of a gate check (its row's xmin) ends in the WAL, and whether the
# WAL was flushed that far when its answer was heard.
_COMMIT_RECORD = """
SELECT w.end_lsn::text, %(flushed)s::pg_lsn >= w.end_lsn
  FROM approvals_gatecheck AS c
  JOIN pg_get_wal_records_info(%(start)s::pg_lsn, pg_current_wal_flush_lsn()) AS w
       ON w.xid = c.xmin
 WHERE c.id = %(check_id)s AND w.resource_manager = 'Transaction' AND w.record_type = 'COMMIT'
"""


def test_an_allowed_check_answers_only_once_its_commit_is_on_disk(gatekeeper_on_slow_wal):
    gk = gatekeeper_on_slow_wal
    with gk.connect() as observer:
        observer.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        start = observer.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        heard = []
        for step in range(10):
            status, answer = gk.node.api(
                "POST", "/api/v1/gate", gk.token, allowed_body("flush", step)
            )
            assert (status, answer["decision"]) == (200, "allow"), answer
            flushed = observer.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]
            heard.append((answer["check_id"], flushed))
        observer.execute("CHECKPOINT")  # the rest of the WAL to disk, where it can be read
        late = []
        for check_id, flushed in heard:
            row = {"flushed": flushed, "start": start, "check_id": check_id}
            commit_end, on_disk = observer.execute(_COMMIT_RECORD, row).fetchone()
            if not on_disk:
                late.append(
                    f"{check_id}: WAL flushed to {flushed}, its commit ends at {commit_end}"
                )
    assert late == [], "answers heard before their commit was on disk:\n" + "\n".join(late)


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
