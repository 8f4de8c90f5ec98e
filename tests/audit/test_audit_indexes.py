"""Every appended event writes each index of the record: only the ones some query uses exist."""

from django.db import connection


def test_the_record_keeps_its_unique_hash_but_no_pattern_copy_of_it(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        definitions = [definition for (definition,) in cursor.fetchall()]
    assert any("UNIQUE" in d and "(hash)" in d for d in definitions)
    assert not any("varchar_pattern_ops" in d for d in definitions)
    assert len(definitions) == 7
