"""Who may read what: the one rule the timeline, the browser and the export all apply."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from approvals.dashboard import packets_visible_to
from approvals.models import Execution

AUDIT_PERMISSION = "audit.view_auditevent"


def can_browse(user) -> bool:
    """The audit browser and export: superusers and holders of audit.view_auditevent."""
    return user.has_perm(AUDIT_PERMISSION)


def executions_visible_to(user) -> QuerySet[Execution]:
    """Executions whose record the user may read (DESIGN section 5).

    Auditors and superusers read every one; others the executions they own (as the owning user or
    a member of the owning group) and those with a packet they may view. One query.
    """
    executions = Execution.objects.all()
    if not user.is_active:
        return executions.none()
    if can_browse(user):
        return executions
    # The same reading of an owner string as approvals.permissions.owner_principal.
    owned_by_group = (
        Q(owner__in=user.groups.values("name"))
        & ~Q(owner__startswith="user:")
        & ~Q(owner__startswith="service:")
    )
    return executions.filter(
        Q(owner=f"user:{user.get_username()}")
        | owned_by_group
        | Exists(packets_visible_to(user).filter(execution=OuterRef("pk")))
    )


def execution_for_user(*, user, execution_id) -> Execution | None:
    return (
        executions_visible_to(user)
        .select_related("service_account")
        .filter(id=execution_id)
        .first()
    )
