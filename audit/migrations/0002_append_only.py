"""The database itself refuses to change or remove decision-record rows.

Triggers stop UPDATE, DELETE and TRUNCATE for every role, superusers included; revoking the
privileges as well means a non-owner application role is refused before any trigger runs.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the decision record is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM CURRENT_USER;
"""

BACKWARD = """
GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO CURRENT_USER;
DROP TRIGGER audit_no_truncate ON audit_auditevent;
DROP TRIGGER audit_no_update_delete ON audit_auditevent;
DROP FUNCTION audit_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
