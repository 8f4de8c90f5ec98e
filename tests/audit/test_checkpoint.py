"""The periodic checkpoint: the record's head to the log and, signed, to a receiver."""

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.models import OutboxMessage
from audit.chain import GENESIS_HASH
from audit.checkpoint import Checkpoint, audit_checkpoint
from audit.models import AuditEvent

RECEIVER = "https://audit.example.com/checkpoints"


@pytest.fixture
def receiver_configured(settings):
    settings.GATEKEEPER_AUDIT_CHECKPOINT_URL = RECEIVER
    settings.GATEKEEPER_AUDIT_CHECKPOINT_SECRET = "checkpoint-secret-0123456789"
    return settings


def test_the_head_is_logged_once_it_is_committed(gate, caplog, django_capture_on_commit_callbacks):
    gate()
    head = AuditEvent.objects.last()
    with caplog.at_level(logging.INFO, logger="gatekeeper.audit.checkpoint"):
        with django_capture_on_commit_callbacks(execute=False) as pending:
            assert audit_checkpoint() == Checkpoint(head.id, head.hash)
        assert caplog.records == []  # nothing said before the head is durable
        for callback in pending:
            callback()
    assert [r.getMessage() for r in caplog.records] == [
        f"audit checkpoint seq={head.id} hash={head.hash}"
    ]
    assert not OutboxMessage.objects.exists()  # no receiver configured


def test_an_empty_record_checkpoints_the_genesis_hash(db):
    assert audit_checkpoint() == Checkpoint(0, GENESIS_HASH)


def test_with_a_receiver_the_head_is_queued_as_a_signed_webhook(gate, receiver_configured):
    gate()
    head = AuditEvent.objects.last()

    audit_checkpoint()

    message = OutboxMessage.objects.get()
    assert (message.kind, message.topic, message.recipient) == (
        "webhook",
        "audit.checkpoint",
        RECEIVER,
    )
    assert message.service_account is None and message.packet is None
    body = json.loads(message.payload["body"])
    assert body["id"] == str(message.id) and body["event"] == "audit.checkpoint"
    assert (body["checkpoint"]["seq"], body["checkpoint"]["hash"]) == (head.id, head.hash)
    assert "checkpoint-secret" not in json.dumps(message.payload)


def test_one_checkpoint_per_interval_however_often_it_is_asked(gate, receiver_configured):
    gate()
    first, second = StringIO(), StringIO()
    call_command("sweep", stdout=first)
    call_command("sweep", stdout=second)

    assert f"checkpoint={AuditEvent.objects.last().id}" in first.getvalue()
    assert "checkpoint=not-due" in second.getvalue()
    assert OutboxMessage.objects.filter(topic="audit.checkpoint").count() == 1


def test_the_beat_schedule_runs_the_checkpoint_at_its_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == "audit.tasks.audit_checkpoint"
    assert entry["schedule"] == settings.GATEKEEPER_AUDIT_CHECKPOINT_SECONDS


def test_a_run_a_little_early_still_makes_the_next_checkpoint(gate, receiver_configured):
    """Beat's runs drift: one a few seconds short of the interval must not skip a whole one."""
    gate()
    audit_checkpoint()
    interval = receiver_configured.GATEKEEPER_AUDIT_CHECKPOINT_SECONDS
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(seconds=interval - 5))

    assert audit_checkpoint() is not None
    assert OutboxMessage.objects.filter(topic="audit.checkpoint").count() == 2
