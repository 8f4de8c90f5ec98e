"""Every appended event writes each index of the record: only the ones some query uses exist."""

from django.db import connection


def test_the_record_has_no_index_on_its_hash_which_nothing_reads_by(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        definitions = [definition for (definition,) in cursor.fetchall()]
    assert not any("(hash" in d for d in definitions)
    assert len(definitions) == 6  # seq, and the timeline, packet, kind, time and actor lookups
