"""`audit_chain(head, document)`: the hash chain as an aggregate, so PostgreSQL can chain rows.

Used as a window aggregate ordered by seq, it gives each row SHA-256(previous hash || its
document), starting from `head`: the very formula of audit.chain.HASH_SQL, which verify_audit
recomputes. With it, appending any number of events is one INSERT ... SELECT (audit/services.py):
no row travels to Python and back to be hashed, and the chain lock is held for one statement.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION audit_chain_step(state text, head text, document text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(coalesce(state, head) || document, 'UTF8')), 'hex') $$;
CREATE AGGREGATE audit_chain(head text, document text) (SFUNC = audit_chain_step, STYPE = text);
"""

BACKWARD = """
DROP AGGREGATE audit_chain(text, text);
DROP FUNCTION audit_chain_step(text, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_actor_at_index")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
