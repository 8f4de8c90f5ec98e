"""Celery tasks of the decision record: thin wrappers around its services."""

from celery import shared_task

from audit.checkpoint import audit_checkpoint as take_checkpoint


@shared_task(ignore_result=True)
def audit_checkpoint() -> str:
    head = take_checkpoint()
    return "not due" if head is None else str(head)
