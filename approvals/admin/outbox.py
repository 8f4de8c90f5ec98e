"""Deliveries in the admin: the outbox read-only, a redeliver action, users without an address.

Rows move only through the outbox service (queued with the change, claimed and sent by a
worker), so the admin offers no form that edits one. What an operator needs is to see what
went out, what is retrying and why, what was given up on (and send it again), and who cannot
be told at all because their account has no email address.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import Truncator

from approvals.channel_registry import channel_for
from approvals.models import OutboxMessage
from approvals.services.outbox import redeliver

Status = OutboxMessage.Status
REDELIVERABLE = (Status.FAILED, Status.SENT)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "topic",
        "recipient",
        "username",
        "status",
        "attempts",
        "next_attempt_at",
        "error",
        "created_at",
        "sent_at",
    )
    list_filter = ("kind", "status", "topic")
    search_fields = ("recipient", "username")
    actions = ("redeliver",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "kind",
                    "topic",
                    "packet",
                    "service_account",
                    "recipient",
                    "username",
                )
            },
        ),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "lease_until",
                    "last_error",
                    "created_at",
                    "sent_at",
                )
            },
        ),
        ("Message", {"fields": ("subject", "message")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # The record says a notification was queued; its row is the proof of what was sent.
        return False

    def has_redeliver_permission(self, request) -> bool:
        # No form edits a row, but sending again is a change: it takes the model's change
        # permission as granted to the staff user, which has_change_permission keeps from forms.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def changelist_view(self, request, extra_context=None):
        undeliverable = OutboxMessage.objects.filter(status=Status.UNDELIVERABLE)
        context = {
            "title": "Deliveries",
            "undeliverable_count": undeliverable.count(),
            "undeliverable_url": "?" + urlencode({"status__exact": Status.UNDELIVERABLE}),
            "users_without_email_url": users_without_email_url(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    @admin.action(description="Redeliver (failed or sent messages only)", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        selected = list(queryset.values_list("id", "status"))
        ids = [message_id for message_id, status in selected if status in REDELIVERABLE]
        skipped = len(selected) - len(ids)
        queued = redeliver(ids) if ids else 0
        self.message_user(
            request,
            f"{queued} message{'s' if queued != 1 else ''} queued for delivery again.",
            messages.SUCCESS if queued else messages.WARNING,
        )
        if skipped:
            self.message_user(
                request,
                f"{skipped} left as they are: only failed or sent messages are redelivered "
                "(pending ones are retried anyway; undeliverable ones have no address).",
                messages.WARNING,
            )

    @admin.display(description="last error", ordering="last_error")
    def error(self, message: OutboxMessage) -> str:
        return Truncator(message.last_error).chars(80)

    @admin.display(description="subject or event")
    def subject(self, message: OutboxMessage) -> str:
        return channel_for(message.kind).subject(message)

    @admin.display(description="message")
    def message(self, message: OutboxMessage) -> str:
        # Agent text reaches every channel: each escapes it, never marking it safe.
        return channel_for(message.kind).body_html(message)


def users_without_email_url() -> str:
    url = reverse("admin:auth_user_changelist")
    return f"{url}?{urlencode({'has_email': 'no'})}"


class HasEmailFilter(admin.SimpleListFilter):
    """Reviewers without an address get no notification: the outbox marks theirs undeliverable."""

    title = "has email"
    parameter_name = "has_email"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(email="")
        if self.value() == "no":
            return queryset.filter(email="")
        return queryset


admin.site.unregister(User)


@admin.register(User)
class GatekeeperUserAdmin(UserAdmin):
    """Django's user admin, plus a way to find the users no notification can reach."""

    list_display = (*UserAdmin.list_display, "has_email")
    list_filter = (*UserAdmin.list_filter, HasEmailFilter)

    @admin.display(description="has email", boolean=True, ordering="email")
    def has_email(self, user) -> bool:
        return bool(user.email)
