"""Who may read the whole record: the one rule the browser, the export and the pages that
show the whole organisation apply."""

AUDIT_PERMISSION = "audit.view_auditevent"


def can_browse(user) -> bool:
    """The audit browser and export: superusers and holders of audit.view_auditevent."""
    return user.has_perm(AUDIT_PERMISSION)
