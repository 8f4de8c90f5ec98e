"""manage.py sweep: every periodic job once, synchronously (beat runs the same code)."""

from django.core.management.base import BaseCommand

from approvals.services import outbox
from approvals.services.expiry import packets_expire_overdue
from approvals.services.reminders import packets_remind
from audit.checkpoint import audit_checkpoint


class Command(BaseCommand):
    help = (
        "Expire overdue packets, send reminders and escalations, checkpoint the decision "
        "record, deliver the outbox: once."
    )

    def handle(self, *args, **options):
        expired = packets_expire_overdue()
        reminded = packets_remind()
        # Before delivery, so that a checkpoint it queues goes out in the same run.
        checkpoint = audit_checkpoint()
        results = [outbox.deliver(message_id) for message_id in outbox.due_message_ids()]
        sent = results.count("sent")
        self.stdout.write(
            f"expired={expired} reminded={reminded} delivered={sent} "
            f"retrying={results.count('will retry')} failed={results.count('gave up')} "
            f"checkpoint={'not-due' if checkpoint is None else checkpoint.seq}"
        )
