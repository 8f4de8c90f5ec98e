"""Which group names in policy documents name no existing group: the check every policy write
makes (DESIGN section 2). It reads only auth's groups, so the Policy model may call it."""

from django.contrib.auth.models import Group

GROUP_KEYS = ("approvers", "escalate_to")


def unknown_group_problems(documents, *, lock: bool = False) -> list[dict]:
    """The group names in these policy documents that name no existing group, in one query.

    With lock (inside a transaction) the groups found stay locked until it ends, so a delete or
    rename of one, which locks it first too, waits and then sees the policy that names it.
    """
    named = [
        (document, key, document[key])
        for document in documents
        if isinstance(document, dict)
        for key in GROUP_KEYS
        if isinstance(document.get(key), str) and document[key]
    ]
    if not named:
        return []
    names = {name for _, _, name in named}
    groups = Group.objects.filter(name__in=names)
    if lock:
        groups = groups.select_for_update()
    existing = set(groups.values_list("name", flat=True))
    return [
        {
            "entry": document.get("name") or None,
            "field": key,
            "message": f"names no existing group {name!r}; create the group first",
        }
        for document, key, name in named
        if name not in existing
    ]
