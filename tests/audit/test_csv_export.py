"""/audit/export.csv: the filtered record as CSV, streamed by PostgreSQL's COPY."""

import csv
import io
import json
import tracemalloc
import uuid

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.events import EventKind
from approvals.models import Execution
from audit import csv_export
from audit.models import AuditEvent
from audit.selectors import browse
from audit.services import Event, record_events
from gatekeeper.auth_audit import AuthEvent
from tests.audit import test_audit_browser

# Shared with the browser's tests (tests/audit has no conftest.py of its own).
auditor = test_audit_browser.auditor
record = test_audit_browser.record

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _export(client, query=""):
    response = client.get("/audit/export.csv" + query)
    assert response.status_code == 200, response.content
    return response


def _rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def test_anonymous_visitors_go_to_login(client, db):
    response = client.get("/audit/export.csv")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_users_without_the_audit_permission_get_404(client, alice, charlie):
    for user in (alice, charlie):
        client.force_login(user)
        assert client.get("/audit/export.csv").status_code == 404


def test_wrong_method_is_405(client, auditor):
    client.force_login(auditor)
    assert client.post("/audit/export.csv").status_code == 405


def test_it_streams_csv_as_an_attachment(client, auditor, record):
    record()
    client.force_login(auditor)
    response = _export(client)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="gatekeeper-audit-')
    assert response["Cache-Control"] == "no-store"


def test_the_header_and_every_column(client, auditor, gate):
    gate()
    client.force_login(auditor)
    header, *rows = _rows(_export(client))
    assert header == [
        "seq",
        "at",
        "kind",
        "actor",
        "thread_id",
        "workflow",
        "execution_id",
        "packet_id",
        "data",
        "prev_hash",
        "hash",
    ]
    events = list(AuditEvent.objects.order_by("at", "id"))
    execution = Execution.objects.get()
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):
        assert row == [
            str(event.id),
            event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            event.kind,
            event.actor,
            "onboard-42",
            "hr-onboarding",
            str(execution.id),
            str(event.packet_id) if event.packet_id else "",
            row[8],
            event.prev_hash,
            event.hash,
        ]
        assert json.loads(row[8]) == event.data


def test_bad_filters_are_refused_in_words(client, auditor):
    client.force_login(auditor)
    response = client.get("/audit/export.csv?since=tomorrowish&kind=nope")
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("Nothing was exported: ")
    assert "since: Enter a date like 2026-11-23" in text and "kind: Select a valid choice" in text


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?kind=gate.checked",
        "?actor=alice",
        "?workflow=payments",
        "?q=PAY-",
        "?q=privilege",
        "?q=pay&search=threads",
        "?since=2020-01-01&until=2999-12-31",
        "?until=2020-01-01",
        "?kind=packet.created&workflow=hr-onboarding&actor=service:agent",
    ],
)
def test_the_export_holds_exactly_what_the_pages_show(
    client, auditor, gate, packet_for, policy, record, query, monkeypatch
):
    policy("pay", effect="allow", match={"workflow": "payments"})
    gate(execution__thread_id="pay-7", execution__workflow="payments")
    packet_for(execution__thread_id="hr-1")
    record(AuthEvent.AUTH_LOGIN, data={"labels": ["privilege"]})
    record(AuthEvent.AUTH_LOGIN, actor="user:bob")
    monkeypatch.setattr(browse, "BROWSE_PAGE_SIZE", 2)
    client.force_login(auditor)
    shown = [
        seq
        for page in test_audit_browser.all_pages(client, query)
        for seq in test_audit_browser._seqs(page)
    ]
    exported = [int(row[0]) for row in _rows(_export(client, query))[1:]]
    assert exported == list(reversed(shown))


def test_a_large_export_streams_in_bounded_chunks_and_memory(client, auditor, record):
    for _ in range(4):
        record(count=5000, data={"reason": "x" * 120, "labels": ["a", "b"]})
    client.force_login(auditor)
    response = _export(client)
    tracemalloc.start()
    try:
        chunks = rows = size = 0
        first = None
        for chunk in response.streaming_content:
            first = first or chunk
            chunks += 1
            size += len(chunk)
            rows += chunk.count(b"\n")
            assert len(chunk) < csv_export.CHUNK_BYTES + 4096
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The header leaves on its own, before any row.
    assert first.startswith(b"seq,at,kind,") and first.count(b"\n") == 1
    assert rows == 20001 and chunks > size // csv_export.CHUNK_BYTES
    # The whole CSV is several megabytes; streaming holds about one chunk at a time.
    assert size > 5_000_000 and peak < 1_000_000, (size, peak)


# Outside a test transaction, as in production: the cancelled COPY must not spoil the connection.
@pytest.mark.django_db(transaction=True)
def test_a_client_that_leaves_early_leaves_the_connection_usable(client, auditor, record):
    record(count=3000, data={"reason": "y" * 200})
    client.force_login(auditor)
    response = _export(client)
    stream = iter(response.streaming_content)
    next(stream)
    next(stream)
    # What the WSGI server does when the client goes away; psycopg cancels the COPY.
    response.close()
    assert AuditEvent.objects.count() == 3000


def test_text_cells_that_a_spreadsheet_would_run_are_neutralised(client, auditor, gate, record):
    gate(execution__thread_id="-1.1", execution__workflow="=HYPERLINK()")
    record(actor="@SUM(A1)", data=-7)
    client.force_login(auditor)
    _, *rows = _rows(_export(client))
    assert {(row[4], row[5]) for row in rows if row[4]} == {("'-1.1", "'=HYPERLINK()")}
    assert [rows[-1][3], rows[-1][8]] == ["'@SUM(A1)", "'-7"]


def _cell_text():
    rest = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))
    lead = st.sampled_from([*DANGEROUS, "", "'", " ", "a", '"', "\n"])
    return st.builds(lambda first, tail: (first + tail)[:200], lead, rest)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actor=_cell_text(), text=_cell_text(), number=st.integers(-(10**12), 10**12))
def test_neutralisation_holds_for_any_text(client, auditor, actor, text, number):
    """Every cell that would start with =, +, -, @, tab or CR starts with ' instead."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        record_events(
            [
                Event(EventKind.PACKET_COMMENTED, actor=actor, data={"t": token, "c": text}),
                Event(EventKind.PACKET_COMMENTED, actor=text, data=number),
            ]
        )
    with connection.cursor() as cursor:
        # What the database holds is what the cells show, before any prefix.
        cursor.execute(
            "SELECT actor, data::text FROM audit_auditevent ORDER BY id DESC LIMIT 2",
        )
        (second_actor, second_data), (first_actor, first_data) = cursor.fetchall()
    client.force_login(auditor)
    _, *rows = _rows(_export(client, f"?q={token}"))
    number_row = _rows(_export(client, "?kind=packet.commented"))[-1]
    assert [row[3] for row in rows] == [_expected(first_actor)]
    assert rows[0][8] == _expected(first_data)
    assert json.loads(rows[0][8]) == {"t": token, "c": text}
    assert (number_row[3], number_row[8]) == (_expected(second_actor), _expected(second_data))
    for row in [*rows, number_row]:
        for cell in row:
            assert not cell.startswith(DANGEROUS), row


def _expected(value: str) -> str:
    return "'" + value if value.startswith(DANGEROUS) else value
