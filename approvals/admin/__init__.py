"""The Django admin: policies, service accounts, object permissions, and read-only operator views.

Every write that has a service goes through it, so the admin leaves the same record as the API
and the commands: a policy save bumps the version and writes `policy.changed`, a service account
gets its token from the service that hashes it. Everything an orchestrator or a reviewer
produced (executions, checks, packets, votes, outcomes) is read-only here: only the services
move those through their states. The outbox's deliveries are in `admin_outbox`.
"""

from functools import partial

from django.contrib import admin, messages
from django.db.models.expressions import RawSQL
from django.urls import path, re_path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from guardian.admin import (
    AdminGroupObjectPermissionsForm,
    AdminUserObjectPermissionsForm,
    GuardedModelAdminMixin,
)
from guardian.shortcuts import get_perms_for_model

from approvals.admin import (
    groups,  # noqa: F401 - registers the group admin
    outbox,  # noqa: F401 - registers the deliveries and the user admin
)
from approvals.admin.forms import PolicyForm, ServiceAccountAddForm
from approvals.admin.match import CONDITIONS_PREFIX, MAX_CONDITIONS
from approvals.admin.policy_trials import (
    policy_promote_view,
    policy_replay,
    policy_shadow_report,
    promote_policies,
)
from approvals.admin.views import (
    dry_run_panel,
    one_time_secrets,
    picked_request_text,
    policy_dry_run,
)
from approvals.models import (
    Execution,
    GateCheck,
    PausePacket,
    Policy,
    ServiceAccount,
    StepOutcome,
    Vote,
)
from approvals.permissions import PACKET_PERMISSIONS
from approvals.policy_documents import SETTING_KEYS
from approvals.services.policies import policy_save
from approvals.services.service_accounts import (
    service_account_create,
    service_account_rotate_token,
)
from audit.actors import user_actor
from audit.admin import pretty_json
from audit.jsontext import VisibleValuesListFilter, visible_column


def _actor(request) -> str:
    return user_actor(request.user)


def _with_form_action(data):
    """The POST of the policy form, readied for the button pressed: one more condition row, or
    the request of the gate check picked for the dry run. Saving takes the data as it is."""
    if "_add_condition" in data:
        data = data.copy()
        key = f"{CONDITIONS_PREFIX}-TOTAL_FORMS"
        data[key] = str(min(_int(data.get(key)) + 1, MAX_CONDITIONS))
    elif "_dry_run_use" in data:
        data = data.copy()
        data["dry_run-request"] = picked_request_text(data["_dry_run_use"]) or ""
    return data


def _int(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _adopt(obj, saved) -> None:
    """Make the admin's unsaved form instance the row a service saved, for the redirect and log."""
    obj.pk = saved.pk
    obj.refresh_from_db()
    obj._state.adding = False


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = (
        "name",
        "priority",
        "enabled",
        "mode",
        "effect",
        "approvers",
        "version",
        "updated_at",
        "shadow_differs",
    )
    list_filter = ("enabled", "mode", "effect")
    search_fields = ("name", "approvers")
    actions = ("promote",)

    def get_queryset(self, request):
        # The shadow column's count rides in the list's own query, one subquery per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                would_differ=RawSQL(
                    "CASE WHEN approvals_policy.mode = 'shadow' THEN (SELECT count(*)"
                    " FROM approvals_gatecheck c WHERE c.shadow IS NOT NULL AND c.shadow @>"
                    " jsonb_build_array(jsonb_build_object('policy', approvals_policy.name,"
                    " 'differs', true))) END",
                    [],
                )
            )
        )

    @admin.display(description="shadow: would have answered otherwise")
    def shadow_differs(self, policy: Policy) -> str:
        if policy.mode != Policy.Mode.SHADOW:
            return "-"
        url = reverse("admin:approvals_policy_shadow", args=[policy.pk])
        return format_html('<a href="{}">{} checks</a>', url, policy.would_differ)

    @admin.action(description="Promote selected shadow policies to enforce", permissions=["change"])
    def promote(self, request, queryset):
        promote_policies(request, self, queryset.order_by("name"))

    change_form_template = "admin/approvals/policy/change_form.html"

    def get_fieldsets(self, request, obj=None):
        match_fields = ["match_workflow", "match_tool", "match_min_risk", "match_labels_any"]
        fieldsets = [
            (None, {"fields": ("name", "priority", "enabled", "mode", "effect")}),
            (
                "Match",
                {
                    "description": "Every key left empty matches anything. Conditions test "
                    "values inside the action's args, one row each.",
                    "fields": match_fields,
                },
            ),
            (
                "Packet settings",
                {
                    "description": "Left empty, a setting takes its GATEKEEPER_DEFAULT_* value, "
                    "shown next to it.",
                    "fields": SETTING_KEYS,
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("Trials", {"fields": ("trials",)}))
            fieldsets.append(
                (
                    "Versions",
                    {
                        # Folded (a <details>, no script needed): the editor comes first.
                        "classes": ["collapse"],
                        "fields": ("version", "version_history"),
                    },
                )
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # policy_save finds a policy by name (as import_policies does): renaming one here
        # would create a second policy instead.
        if obj is None:
            return ()
        return ("name", "version", "version_history", "trials")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            request.POST = _with_form_action(request.POST)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        context["has_editable"] = add or self.has_change_permission(request, obj)
        if context["has_editable"] and form.is_bound and not form.errors:
            context["match_json"] = (pretty_json(form.policy_document()["match"]), "as drafted")
        elif obj is not None:
            context["match_json"] = (pretty_json(obj.match), "as stored")
        if not context["has_editable"]:
            return super().render_change_form(request, context, add, change, form_url, obj)
        draft = None
        if form.action in ("_dry_run", "_dry_run_use") and not form.errors:
            draft = form.policy_document()
        context["dry_run"] = dry_run_panel(
            form.dry_run,
            search=form.data.get("dry_run_q", "") if form.is_bound else "",
            page=form.data.get("_dry_run_search") if form.is_bound else None,
            draft=draft,
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_delete_permission(self, request, obj=None):
        # Deleting would drop the version history and write no policy.changed event;
        # disabling a policy keeps both.
        return False

    def save_model(self, request, obj, form, change):
        saved, changed = policy_save(document=form.policy_document(), actor=_actor(request))
        _adopt(obj, saved)
        if change and not changed:
            self.message_user(request, "Nothing changed, so no new version.", messages.INFO)

    @admin.display(description="version history (newest first)")
    def version_history(self, policy: Policy) -> str:
        rows = format_html_join(
            "",
            "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    version.version,
                    version.changed_by,
                    timezone.localtime(version.changed_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
                    pretty_json(version.document),
                )
                for version in policy.versions.order_by("-version")
            ),
        )
        return format_html(
            "<table><thead><tr><th>version</th><th>changed by</th><th>changed at</th>"
            "<th>document</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="try it")
    def trials(self, policy: Policy) -> str:
        links = [(reverse("admin:approvals_policy_replay", args=[policy.pk]), "Replay a draft")]
        if policy.mode == Policy.Mode.SHADOW:
            links.insert(
                0, (reverse("admin:approvals_policy_shadow", args=[policy.pk]), "Shadow report")
            )
        return format_html_join(" | ", '<a href="{}">{}</a>', links)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(partial(function, model_admin=self))

        # Ahead of the default URLs, whose "<object_id>/" would otherwise swallow "dry-run/".
        return [
            path(
                "dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="approvals_policy_dry_run",
            ),
            path("replay/", view(policy_replay), name="approvals_policy_replay_new"),
            path("<path:object_id>/replay/", view(policy_replay), name="approvals_policy_replay"),
            path(
                "<path:object_id>/shadow/",
                view(policy_shadow_report),
                name="approvals_policy_shadow",
            ),
            path(
                "<path:object_id>/promote/",
                view(policy_promote_view),
                name="approvals_policy_promote",
            ),
            *super().get_urls(),
        ]

    def dry_run_view(self, request):
        return policy_dry_run(request, self)


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "token_prefix",
        "callback_url",
        "is_active",
        "token_expires_at",
        "created_at",
        "last_used_at",
    )
    list_filter = ("is_active",)
    search_fields = ("name",)
    actions = ("rotate_token",)
    # token_hash and webhook_secret are never shown. What is edited: is_active (revocation) and
    # token_expires_at. The name is in every audit actor ("service:<name>"), and a callback URL
    # set later would have no webhook secret: both are fixed at creation.
    fields = (
        "name",
        "token_prefix",
        "callback_url",
        "is_active",
        "token_expires_at",
        "created_at",
        "last_used_at",
    )
    readonly_fields = ("name", "token_prefix", "callback_url", "created_at", "last_used_at")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ServiceAccountAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("name", "callback_url", "token_expires_at") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Executions and the record refer to the account; deactivating revokes it just as well.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            # Only what the form edits: a full save could write back a token hash rotated
            # meanwhile.
            obj.save(update_fields=["is_active", "token_expires_at"])
            return
        account, token = service_account_create(
            name=form.cleaned_data["name"],
            callback_url=form.cleaned_data["callback_url"],
            token_expires_at=form.cleaned_data.get("token_expires_at"),
        )
        _adopt(obj, account)
        obj.new_token = token  # Read once by response_add, never stored.

    def response_add(self, request, obj, post_url_continue=None):
        return one_time_secrets(
            request,
            self,
            title=f"Service account {obj.name} created",
            accounts=[(obj, obj.new_token, obj.webhook_secret)],
        )

    @admin.action(
        description="Rotate token (the old one stops working at once)", permissions=["change"]
    )
    def rotate_token(self, request, queryset):
        rotated = []
        for account in queryset:
            rotated.append((account, service_account_rotate_token(account=account), ""))
            self.log_change(request, account, "Rotated the token.")
        return one_time_secrets(request, self, title="Tokens rotated", accounts=rotated)


def _packet_permissions(packet) -> list:
    # Only the two permissions that mean something on one packet (DESIGN section 5): granting
    # "change" or "delete" on a packet would suggest powers nothing honours.
    return [p for p in get_perms_for_model(packet) if p.codename in PACKET_PERMISSIONS]


class _PacketPermissionsForm:
    """Offers only the packet permissions, and reports each save so the admin can log it."""

    def __init__(self, *args, on_save, **kwargs):
        self.on_save = on_save
        super().__init__(*args, **kwargs)

    def get_obj_perms_field_choices(self):
        return [(p.codename, p.name) for p in _packet_permissions(self.obj)]

    def save_obj_perms(self):
        super().save_obj_perms()
        self.on_save(self)


class PacketUserPermissionsForm(_PacketPermissionsForm, AdminUserObjectPermissionsForm):
    pass


class PacketGroupPermissionsForm(_PacketPermissionsForm, AdminGroupObjectPermissionsForm):
    pass


class VoteInline(admin.TabularInline):
    model = Vote
    fields = ("user", "snapshot_hash", "comment", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PausePacket)
class PausePacketAdmin(GuardedModelAdminMixin, admin.ModelAdmin):
    """Read-only packets, plus guardian's per-packet permission pages for delegation."""

    list_display = (
        "thread_id",
        "step_index",
        visible_column("step_name"),
        visible_column("tool"),
        "status",
        visible_column("workflow"),
        visible_column("policy_name"),
        "expires_at",
    )
    list_filter = (
        "status",
        ("workflow", VisibleValuesListFilter),
        ("policy_name", VisibleValuesListFilter),
    )
    search_fields = ("execution__thread_id", "tool", "step_name")
    list_select_related = ("execution",)
    inlines = (VoteInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "execution",
                    "gate_check",
                    "step_index",
                    visible_column("step_name"),
                )
            },
        ),
        (
            "Pending action",
            {"fields": (visible_column("tool"), "args_json", "side_effect", "context_json")},
        ),
        (
            "Authority",
            {
                "fields": (
                    visible_column("owner"),
                    visible_column("workflow"),
                    visible_column("approvers"),
                    visible_column("escalate_to"),
                    "requested_by",
                    visible_column("on_behalf_of"),
                )
            },
        ),
        (
            "Policy",
            {
                "fields": (
                    visible_column("policy_name"),
                    "policy_version",
                    visible_column("reason"),
                    "required_approvals",
                    "forbid_self_approval",
                    "allow_edit",
                    "fresh_for_seconds",
                    "expires_after_seconds",
                    "remind_before_seconds",
                )
            },
        ),
        (
            "Deadlines",
            {
                "fields": (
                    "created_at",
                    "fresh_until",
                    "expires_at",
                    "reminded_at",
                    "escalated_at",
                    "snapshot_hash",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "status",
                    "branch",
                    "decision",
                    "decided_by_json",
                    "decided_at",
                    visible_column("comment"),
                    "edited_args_json",
                    "superseded_by",
                )
            },
        ),
    )
    # Guardian's own URL patterns take any string as the packet id and any user or group id, and
    # a malformed one reaches the ORM as a 500; these accept only well-formed ids.
    include_object_permissions_urls = False

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Nothing on a packet is edited here: services alone move a packet between states.
        # Guardian's permission pages ask with obj=None, meaning "may this user delegate
        # packets?"; the model's change permission answers that.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def get_urls(self):
        uuid = r"(?P<object_pk>[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})"
        prefix = "approvals_pausepacket_permissions"
        view = self.admin_site.admin_view
        return [
            re_path(rf"^{uuid}/permissions/$", view(self.obj_perms_manage_view), name=prefix),
            re_path(
                rf"^{uuid}/permissions/user-manage/(?P<user_id>[0-9]+)/$",
                view(self.obj_perms_manage_user_view),
                name=f"{prefix}_manage_user",
            ),
            re_path(
                rf"^{uuid}/permissions/group-manage/(?P<group_id>[0-9]+)/$",
                view(self.obj_perms_manage_group_view),
                name=f"{prefix}_manage_group",
            ),
            *super().get_urls(),
        ]

    def get_obj_perms_base_context(self, request, obj):
        context = super().get_obj_perms_base_context(request, obj)
        context["model_perms"] = _packet_permissions(obj)
        # The breadcrumbs link back to the packet when this is true; viewing is enough.
        context["has_change_permission"] = self.has_view_permission(request, obj)
        return context

    def get_obj_perms_manage_user_form(self, request):
        return partial(PacketUserPermissionsForm, on_save=partial(self._log_delegation, request))

    def get_obj_perms_manage_group_form(self, request):
        return partial(PacketGroupPermissionsForm, on_save=partial(self._log_delegation, request))

    def _log_delegation(self, request, form) -> None:
        # Delegation hands out resume authority, and guardian's views log nothing: keep who
        # gave what to whom in the packet's admin history. (The decision record has no event
        # kind for it; see DESIGN section 8.)
        principal = f"user {form.user}" if hasattr(form, "user") else f"group {form.group}"
        granted = ", ".join(sorted(form.cleaned_data["permissions"])) or "nothing"
        self.log_change(request, form.obj, f"Object permissions of {principal}: {granted}.")

    @admin.display(description="thread id", ordering="execution__thread_id")
    def thread_id(self, packet: PausePacket) -> str:
        return packet.execution.thread_id

    @admin.display(description="args")
    def args_json(self, packet: PausePacket) -> str:
        return pretty_json(packet.args)

    @admin.display(description="context")
    def context_json(self, packet: PausePacket) -> str:
        return pretty_json(packet.context)

    @admin.display(description="decided by")
    def decided_by_json(self, packet: PausePacket) -> str:
        return pretty_json(packet.decided_by)

    @admin.display(description="edited args")
    def edited_args_json(self, packet: PausePacket) -> str:
        return pretty_json(packet.edited_args)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For operators to inspect what the orchestrators and reviewers produced; services write it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "thread_id",
        visible_column("workflow"),
        visible_column("owner"),
        "service_account",
        "parent",
        "created_at",
    )
    list_filter = (("workflow", VisibleValuesListFilter),)
    search_fields = ("thread_id", "owner")
    list_select_related = ("service_account", "parent")
    fields = (
        "id",
        "thread_id",
        visible_column("workflow"),
        visible_column("owner"),
        "owner_changed_at",
        "service_account",
        "parent",
        "created_at",
    )
    readonly_fields = fields


@admin.register(GateCheck)
class GateCheckAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "thread_id",
        "step_index",
        visible_column("step_name"),
        visible_column("tool"),
        "side_effect",
        "decision",
        visible_column("policy_name"),
        "policy_version",
    )
    list_filter = ("decision", "side_effect")
    search_fields = ("execution__thread_id", "tool", "idempotency_key")
    list_select_related = ("execution",)
    fields = (
        "id",
        "execution",
        "service_account",
        "idempotency_key",
        "step_index",
        visible_column("step_name"),
        visible_column("tool"),
        "side_effect",
        "decision",
        visible_column("reason"),
        visible_column("policy_name"),
        "policy_version",
        "request_json",
        "response_json",
        "request_hash",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="thread id", ordering="execution__thread_id")
    def thread_id(self, check: GateCheck) -> str:
        return check.execution.thread_id

    @admin.display(description="request")
    def request_json(self, check: GateCheck) -> str:
        return pretty_json(check.request)

    @admin.display(description="response")
    def response_json(self, check: GateCheck) -> str:
        return pretty_json(check.response)


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ("packet", "user", "created_at")
    search_fields = ("packet__execution__thread_id", "user__username")
    list_select_related = ("packet__execution", "user")
    fields = ("packet", "user", "snapshot_hash", visible_column("comment"), "created_at")
    readonly_fields = fields


@admin.register(StepOutcome)
class StepOutcomeAdmin(ReadOnlyAdmin):
    list_display = (
        "execution",
        "step_index",
        "side_effect",
        "gated",
        visible_column("reported_by"),
        "created_at",
    )
    list_filter = ("side_effect", "gated")
    search_fields = ("execution__thread_id", "reported_by")
    list_select_related = ("execution",)
    fields = (
        "execution",
        "step_index",
        "side_effect",
        "detail_json",
        "gated",
        visible_column("reported_by"),
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="detail")
    def detail_json(self, outcome: StepOutcome) -> str:
        return pretty_json(outcome.detail)
