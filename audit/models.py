from django.db import models

from audit import kinds

# The largest seq the bigint key holds: a cursor past it names no row.
MAX_SEQ = 2**63 - 1


class AuditEvent(models.Model):
    """One row of the append-only, hash-chained decision record (DESIGN section 8).

    Rows are written only by audit.services.record_event, in the transaction of the change they
    describe. The database refuses UPDATE, DELETE and TRUNCATE (see migration 0002).
    """

    # The primary key is the sequence number of the chain.
    id = models.BigAutoField(primary_key=True, verbose_name="seq")
    at = models.DateTimeField()
    # Each app registers the kinds it writes (audit.kinds); the column holds their values.
    kind = models.CharField(max_length=40, choices=kinds.choices)
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
