"""An index for the audit browser's actor filter.

The browser pages by (at, seq); with this index a page of one actor's events is an index range
scan whether the actor is common, rare or only in old rows (without it, a rare actor scanned the
whole record: about 0.9 s on 2 million rows, against 0.1 ms with it).

Raw SQL, so the model state (audit/models.py) is unchanged, and CONCURRENTLY because every
decision appends to this table: a plain CREATE INDEX would hold those writes until it finished.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_actor_at "
            "ON audit_auditevent (actor, at)",
            "DROP INDEX CONCURRENTLY IF EXISTS audit_actor_at",
        )
    ]
