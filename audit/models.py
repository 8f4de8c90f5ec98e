from django.db import models


class AuditEvent(models.Model):
    """One row of the append-only, hash-chained decision record (DESIGN section 8).

    Rows are written only by audit.services.record_event, in the transaction of the change they
    describe. The database refuses UPDATE, DELETE and TRUNCATE (see migration 0002).
    """

    class Kind(models.TextChoices):
        GATE_CHECKED = "gate.checked"
        PACKET_CREATED = "packet.created"
        PACKET_VOTED = "packet.voted"
        PACKET_EDITED = "packet.edited"
        PACKET_COMMENTED = "packet.commented"
        PACKET_APPROVED = "packet.approved"
        PACKET_REJECTED = "packet.rejected"
        PACKET_EXPIRED = "packet.expired"
        PACKET_RE_REVIEW = "packet.re_review"
        PACKET_RECONCILING = "packet.reconciling"
        PACKET_APPLIED = "packet.applied"
        PACKET_TERMINATED = "packet.terminated"
        PACKET_SUPERSEDED = "packet.superseded"
        EXECUTION_OWNER_CHANGED = "execution.owner_changed"
        EXECUTION_TAKEN_OVER = "execution.taken_over"
        STEP_OUTCOME = "step.outcome"
        NOTIFICATION_QUEUED = "notification.queued"
        NOTIFICATION_SENT = "notification.sent"
        WEBHOOK_DELIVERED = "webhook.delivered"
        POLICY_CHANGED = "policy.changed"
        AUTH_LOGIN = "auth.login"
        AUTH_LOGIN_FAILED = "auth.login_failed"
        AUTH_LOCKED_OUT = "auth.locked_out"

    # The primary key is the sequence number of the chain.
    id = models.BigAutoField(primary_key=True, verbose_name="seq")
    at = models.DateTimeField()
    kind = models.CharField(max_length=40, choices=Kind.choices)
    actor = models.CharField(max_length=200, help_text="user:<name>, service:<name> or system")
    # Plain UUIDs, not foreign keys: the record must outlive anything it describes.
    execution_id = models.UUIDField(null=True, blank=True)
    packet_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    # No index: nothing looks a row up by its hash (verify_audit walks the chain in seq order),
    # and a unique index over random 64-character keys was the dearest write of every append.
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["execution_id", "id"], name="audit_execution_seq"),
            models.Index(fields=["packet_id", "id"], name="audit_packet_seq"),
            models.Index(fields=["kind", "id"], name="audit_kind_seq"),
            models.Index(fields=["at"], name="audit_at"),
        ]

    def __str__(self):
        return f"#{self.id} {self.kind} by {self.actor}"

    @property
    def seq(self) -> int:
        return self.id
