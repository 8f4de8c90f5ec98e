"""Expiry: nothing is ever approved by time passing; an overdue packet is rejected as expired."""

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import PausePacket
from approvals.notify import notify_packets_changed
from approvals.services.outbox import outbox_packets_changed
from audit.models import AuditEvent
from audit.services import Event, record_events

_CLAIM_BATCH = """
UPDATE approvals_pausepacket AS p
   SET status = 'expired', branch = NULL, decision = 'block', decided_at = %(now)s,
       decided_by = '[]'::jsonb
 WHERE p.id IN (
       SELECT id FROM approvals_pausepacket
        WHERE status IN ('pending', 're_review', 'reconciling') AND expires_at <= %(now)s
        ORDER BY expires_at
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED)
RETURNING p.id, p.execution_id, p.expires_at
"""


def packets_expire_overdue(*, now=None, batch_size: int = 1000) -> int:
    """Expire every open packet past its deadline, in set-based batches; returns how many.

    SKIP LOCKED lets several sweepers (and reviewers holding a row) work side by side: a row
    somebody else holds is theirs to decide, and the next sweep sees it if it is still open.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_CLAIM_BATCH, {"now": now, "batch": batch_size})
                rows = cursor.fetchall()
            notify_packets_changed(packet_id for packet_id, _, _ in rows)
            # Only packets someone must hear about: a callback URL, or a requester to tell.
            outbox_packets_changed(
                list(
                    PausePacket.objects.filter(id__in=[row[0] for row in rows])
                    .filter(~Q(requested_by__callback_url="") | ~Q(on_behalf_of=""))
                    .select_related("execution", "requested_by")
                )
            )
            record_events(
                Event(
                    AuditEvent.Kind.PACKET_EXPIRED,
                    actor="system",
                    execution_id=execution_id,
                    packet_id=packet_id,
                    data={
                        "status": PausePacket.Status.EXPIRED,
                        "decision": "block",
                        "expires_at": expires_at,
                        "reason": "decision deadline passed",
                    },
                )
                for packet_id, execution_id, expires_at in rows
            )
        total += len(rows)
        if len(rows) < batch_size:
            return total
