"""Django's group admin, refusing to delete or rename a group that policies route to.

The model-level guard (approvals.policy_groups) would refuse anyway; here the admin says so
before anything is tried: the delete page lists the policies as protected, the rename is a form
error naming them.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from approvals.models import Policy
from approvals.policy_groups import in_use_message, policies_naming_group


class PolicyGroupForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ("name", "permissions")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        old = self.instance.name if self.instance.pk is not None else None
        if old and old != name and (policies := policies_naming_group(old)):
            raise forms.ValidationError(in_use_message(old, policies, action="rename"))
        return name


admin.site.unregister(Group)


@admin.register(Group)
class PolicyGroupAdmin(GroupAdmin):
    form = PolicyGroupForm

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        names = [group.name for group in objs]
        naming = Policy.objects.filter(approvers__in=names) | Policy.objects.filter(
            escalate_to__in=names
        )
        protected = [
            *protected,
            *(
                f"Policy {policy.name} (routes to group {group})"
                for policy in naming.order_by("name")
                for group in names
                if group in (policy.approvers, policy.escalate_to)
            ),
        ]
        return deleted, counts, perms_needed, protected
