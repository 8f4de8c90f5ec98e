"""Celery tasks: thin wrappers that take ids and call services. All idempotent."""

from celery import shared_task

from approvals.services import outbox
from approvals.services.expiry import packets_expire_overdue
from approvals.services.reminders import packets_remind


@shared_task(name=outbox.DELIVER_TASK, acks_late=True, ignore_result=True)
def deliver_outbox_message(message_id: str) -> str:
    return outbox.deliver(message_id)


@shared_task(ignore_result=True)
def expire_overdue_packets() -> int:
    return packets_expire_overdue()


@shared_task(ignore_result=True)
def remind_and_escalate() -> int:
    return packets_remind()


@shared_task(ignore_result=True)
def redrive_outbox() -> int:
    """Queue whatever the outbox still holds: after a broker outage, a killed worker, a retry."""
    due = outbox.due_message_ids()
    for message_id in due:
        deliver_outbox_message.delay(str(message_id))
    return len(due)
