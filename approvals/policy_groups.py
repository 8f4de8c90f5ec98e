"""Policies name only groups that exist (DESIGN section 2), and a named group stays.

A policy routing to a group nobody is in leaves its packets for nobody to approve: every write
of a policy refuses an unknown group, and deleting or renaming a group a policy names is refused
here, at the model level, whatever path (admin, shell, a command) tries it.
"""

from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Q
from django.db.models.signals import pre_delete, pre_save

from approvals.models import Policy


class GroupInUse(Exception):
    """A group that policies name was about to be deleted or renamed."""

    def __init__(self, group: str, policies: list[str], *, action: str):
        self.group = group
        self.policies = policies
        super().__init__(in_use_message(group, policies, action=action))


def in_use_message(group: str, policies: list[str], *, action: str) -> str:
    return (
        f"Cannot {action} group {group!r}: the policies {', '.join(policies)} route to it. "
        "Point those policies at another group first."
    )


def policies_naming_group(name: str) -> list[str]:
    """The names of the policies that route to a group, as approvers or escalation."""
    return list(
        Policy.objects.filter(Q(approvers=name) | Q(escalate_to=name))
        .order_by("name")
        .values_list("name", flat=True)
    )


def refuse_deleting_a_named_group(sender, instance: Group, **kwargs) -> None:
    # Django sends pre_delete inside the delete's transaction: lock the group first, so this
    # and policy_save's locked check are ordered and one sees the other's commit.
    list(Group.objects.select_for_update().filter(pk=instance.pk).values_list("pk"))
    if policies := policies_naming_group(instance.name):
        raise GroupInUse(instance.name, policies, action="delete")


def refuse_renaming_a_named_group(sender, instance: Group, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    groups = Group.objects.filter(pk=instance.pk)
    if connection.in_atomic_block:
        # A save outside a transaction cannot lock (nor then race with a policy save for long).
        groups = groups.select_for_update()
    old = groups.values_list("name", flat=True).first()
    if old is not None and old != instance.name and (policies := policies_naming_group(old)):
        raise GroupInUse(old, policies, action="rename")


def connect() -> None:
    pre_delete.connect(refuse_deleting_a_named_group, sender=Group, dispatch_uid="policy_groups")
    pre_save.connect(refuse_renaming_a_named_group, sender=Group, dispatch_uid="policy_groups")
