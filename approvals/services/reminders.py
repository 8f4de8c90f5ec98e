"""Reminders and escalation, `remind_before_seconds` before a packet's deadline."""

from django.db import connection
from django.utils import timezone

from approvals.models import OPEN_STATUSES, PausePacket, sql_list
from approvals.permissions import (
    PACKET_PERMISSIONS,
    grant_packet_access,
    members_of,
    route_group,
    users_who_may_resume,
)
from approvals.services.outbox import enqueue_emails
from approvals.services.transactions import action_atomic
from approvals.wakeups import wake_waiters

# Claim the due packets, so that two sweepers never remind twice.
_CLAIM = f"""
UPDATE approvals_pausepacket SET reminded_at = %(now)s
 WHERE id IN (
       SELECT id FROM approvals_pausepacket
        WHERE status IN ({sql_list(OPEN_STATUSES)})
          AND reminded_at IS NULL
          AND expires_at > %(now)s
          AND expires_at - remind_before_seconds * interval '1 second' <= %(now)s
        ORDER BY expires_at
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED)
RETURNING id
"""  # noqa: S608 (composed from constants only)


def packets_remind(*, now=None, batch_size: int = 500) -> int:
    """Remind the reviewers of every open packet near its deadline, and escalate it."""
    now = now or timezone.now()
    total = 0
    while True:
        with action_atomic():
            with connection.cursor() as cursor:
                cursor.execute(_CLAIM, {"now": now, "batch": batch_size})
                ids = [row[0] for row in cursor.fetchall()]
            packets = PausePacket.objects.filter(id__in=ids).select_related("execution")
            for packet in packets:
                enqueue_emails("reminder", packet, users_who_may_resume(packet), actor="system")
                if packet.escalate_to:
                    _escalate(packet, now)
        total += len(ids)
        if len(ids) < batch_size:
            return total


def _escalate(packet: PausePacket, now) -> None:
    """Give the escalation group authority over the packet and tell its members."""
    grant_packet_access([packet], [(route_group(packet.escalate_to), PACKET_PERMISSIONS)])
    PausePacket.objects.filter(id=packet.id).update(escalated_at=now)
    wake_waiters([packet.id])  # it arrives in the escalation group's queue
    enqueue_emails("escalation", packet, members_of(packet.escalate_to), actor="system")
