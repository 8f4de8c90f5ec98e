"""The database itself refuses to change or remove decision-record rows (DESIGN section 8)."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import record_event
from gatekeeper.auth_audit import AuthEvent


@pytest.fixture
def event(db) -> AuditEvent:
    with transaction.atomic():
        return record_event(AuthEvent.AUTH_LOGIN, actor="user:alice", data={"ip": "10.0.0.1"})


def _refused(sql: str, params=()):
    # The savepoint keeps the test's transaction usable after the database says no.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def _unchanged(event: AuditEvent):
    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.kind, stored.actor, stored.data, stored.hash) == (
        event.kind,
        event.actor,
        event.data,
        event.hash,
    )


def test_sql_update_is_refused(event):
    _refused("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE id = %s", [event.id])
    _unchanged(event)


def test_sql_delete_is_refused(event):
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [event.id])
    _unchanged(event)


def test_sql_truncate_is_refused(event):
    _refused("TRUNCATE audit_auditevent")
    _unchanged(event)


def test_orm_queryset_update_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).update(actor="user:mallory")
    _unchanged(event)


def test_orm_queryset_delete_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()
    _unchanged(event)


def test_orm_save_of_an_existing_row_is_refused(event):
    event.data = {"ip": "10.6.6.6"}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    event.refresh_from_db()
    assert event.data == {"ip": "10.0.0.1"}


def test_orm_instance_delete_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    assert AuditEvent.objects.filter(id=event.id).exists()
