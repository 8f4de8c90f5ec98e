"""System checks `manage.py check --deploy` runs: what settings alone cannot show.

The decision record is append-only because the database refuses changes to audit_auditevent
(audit/migrations/0002). A role that owns the table, or may act as its owner, or a superuser,
can switch those triggers off, so the processes that serve requests must connect as a role
that owns nothing: docs/deployment.md ("Database roles") shows the two roles.
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connection

from gatekeeper.outbound import url_problem

# The role this process connects as, and what it may do to the audit table (no row when the
# table is not there yet: nothing to judge before `migrate`).
_ROLE_SQL = """
SELECT current_user, r.rolsuper,
       pg_get_userbyid(c.relowner),
       pg_has_role(current_user, c.relowner, 'MEMBER'),
       has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE')
           OR has_table_privilege(c.oid, 'TRUNCATE')
  FROM pg_class AS c JOIN pg_roles AS r ON r.rolname = current_user
 WHERE c.oid = to_regclass('audit_auditevent')
"""
_SEE = "See docs/deployment.md, Database roles."


# Not tagged `database`: it runs with `check --deploy` alone, as docs/deployment.md says to.
@register(Tags.security, deploy=True)
def check_database_role(app_configs=None, **kwargs) -> list[Warning]:
    """Warn when the runtime role could make the decision record's triggers stand aside."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(_ROLE_SQL)
            row = cursor.fetchone()
    except DatabaseError as error:
        return [
            Warning(
                f"Could not check the database role ({type(error).__name__}): is "
                "DATABASE_URL the runtime role's, and is the database up?",
                hint=_SEE,
                id="gatekeeper.W004",
            )
        ]
    if row is None:
        return []
    role, superuser, owner, acts_as_owner, may_change = row
    if superuser:
        return [
            Warning(
                f"The database role {role} is a superuser: it can switch off the triggers "
                "that keep the decision record append-only.",
                hint="Connect web nodes, workers and beat as a role that owns nothing. " + _SEE,
                id="gatekeeper.W001",
            )
        ]
    if acts_as_owner:
        return [
            Warning(
                f"The database role {role} owns audit_auditevent (its owner is {owner}) or "
                "may act as its owner: it can switch off the triggers that keep the decision "
                "record append-only.",
                hint="Run migrations as the owner and everything else as a role that owns "
                "nothing. " + _SEE,
                id="gatekeeper.W002",
            )
        ]
    if may_change:
        return [
            Warning(
                f"The database role {role} holds UPDATE, DELETE or TRUNCATE on "
                "audit_auditevent: only the triggers stand between it and the record.",
                hint=f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM {role}. " + _SEE,
                id="gatekeeper.W003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_audit_checkpoint_url(app_configs=None, **kwargs) -> list[Warning]:
    """The checkpoint receiver is checked at every delivery; say so now if it would be refused."""
    url = settings.GATEKEEPER_AUDIT_CHECKPOINT_URL
    if not url or (problem := url_problem(url)) is None:
        return []
    return [
        Warning(
            f"GATEKEEPER_AUDIT_CHECKPOINT_URL {problem}: every checkpoint would be refused.",
            hint="Use a public receiver, or list its network in "
            "GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS.",
            id="gatekeeper.W005",
        )
    ]
