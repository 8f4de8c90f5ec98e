"""No role but the owner keeps UPDATE, DELETE or TRUNCATE on the decision record.

0002 revoked them from PUBLIC and from the role running migrations. A runtime role given
privileges by `ALTER DEFAULT PRIVILEGES` (docs/deployment.md, Database roles) received them
on this table when 0001 created it: take them back, from every grantee, once.
"""

from django.db import migrations

FORWARD = """
DO $$
DECLARE grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
          FROM pg_class AS c
               CROSS JOIN LATERAL aclexplode(c.relacl) AS a
               LEFT JOIN pg_roles AS r ON r.oid = a.grantee
         WHERE c.oid = 'audit_auditevent'::regclass
           AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM ' || grantee;
    END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_hash_not_indexed")]

    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop)]
