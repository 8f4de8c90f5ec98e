"""The checkpoint end to end: beat's task on a real worker (DEBUG off, production rules),
a real receiver that checks the signature, and verify_audit proving later records extend it."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from audit.tasks import audit_checkpoint
from tests.background.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "checkpoint-secret-0123456789"
TIMEOUT = 20


def test_a_checkpoint_reaches_its_receiver_signed_and_catches_a_later_truncation(
    start_worker, publish_to, redis_broker, webhook_receiver, gate, tmp_path
):
    publish_to(redis_broker)
    webhook_receiver.secret = SECRET
    start_worker(
        "w1",
        DEBUG="false",
        GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        GATEKEEPER_AUDIT_CHECKPOINT_URL=webhook_receiver.url,
        GATEKEEPER_AUDIT_CHECKPOINT_SECRET=SECRET,
    )
    gate(execution__thread_id="before-1")
    gate(execution__thread_id="before-2")
    head = AuditEvent.objects.last()

    audit_checkpoint.delay()  # what beat sends

    (hook,) = webhook_receiver.wait_for(lambda h: h, TIMEOUT, "the checkpoint")
    assert hook["event"] == "audit.checkpoint" and webhook_receiver.refused.items == []
    checkpoint = hook["body"]["checkpoint"]
    assert (checkpoint["seq"], checkpoint["hash"]) == (head.id, head.hash)
    kept = tmp_path / "checkpoint.json"
    kept.write_text(f'{{"seq": {checkpoint["seq"]}, "hash": "{checkpoint["hash"]}"}}')
    delivered = wait_until(
        lambda: AuditEvent.objects.filter(kind="webhook.delivered").first(),
        timeout=TIMEOUT,
        what="the delivery to be recorded",
    )
    assert delivered.data["topic"] == "audit.checkpoint"

    gate(execution__thread_id="after-1")  # the record grows: it still extends the checkpoint
    call_command("verify_audit", "--expect-head-file", str(kept))

    with connection.cursor() as cursor:  # an owner cuts the record back to before it
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM audit_auditevent WHERE id >= %s", [head.id])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    call_command("verify_audit")  # the chain alone still verifies
    with pytest.raises(CommandError, match=f"has no row {head.id}"):
        call_command("verify_audit", "--expect-head-file", str(kept))
