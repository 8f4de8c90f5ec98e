"""Drop the pattern-matching copy of the hash index that Django makes for `unique=True`.

On PostgreSQL, Django gives every unique CharField a second index with varchar_pattern_ops, for
LIKE 'abc%' lookups. Nothing searches hashes by prefix; the index only made every appended
event write one more B-tree (about 12 us an event, 1 s a 100,000-packet sweep: bench/PROFILES.md).
The unique index itself stays. Raw SQL, so the model state is unchanged, and CONCURRENTLY
because every decision appends to this table. The name is the one Django generated for
audit_auditevent.hash (the same on every database).
"""

from django.db import migrations

INDEX = "audit_auditevent_hash_d0c402da_like"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0004_chain_aggregate")]

    operations = [
        migrations.RunSQL(
            f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX}"
            " ON audit_auditevent (hash varchar_pattern_ops)",
        )
    ]
