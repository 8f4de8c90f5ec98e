"""The decision record in the admin: readable by operators, changeable by nobody.

The database already refuses UPDATE and DELETE on the table; the admin refuses them first, so
nobody (superusers included) is offered a form or an action that could only fail.
"""

from django.contrib import admin
from django.utils.html import format_html

from audit.jsontext import pretty_json as as_text
from audit.jsontext import visible_column
from audit.models import AuditEvent


def pretty_json(value) -> str:
    """JSON as an escaped, indented <pre> block: payloads carry agent text, never trusted HTML."""
    return format_html(
        '<pre class="gatekeeper-json">{}</pre>',
        as_text(value),
    )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("id", "at", "kind", visible_column("actor"), "execution_id", "packet_id")
    list_filter = ("kind",)
    search_fields = ("actor",)
    ordering = ("-id",)
    # COUNT(*) over the whole record on every page load grows with the record; skip it.
    show_full_result_count = False
    fields = (
        "id",
        "at",
        "kind",
        "actor",
        "execution_id",
        "packet_id",
        "payload",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="data")
    def payload(self, event: AuditEvent) -> str:
        return pretty_json(event.data)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
