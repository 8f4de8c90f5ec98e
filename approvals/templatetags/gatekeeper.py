"""Small template helpers: relative times, dictionary lookups, agent text made visible."""

from datetime import datetime

from django import template
from django.contrib.messages import constants as message_constants
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from audit.jsontext import pretty_json, visible

register = template.Library()


@register.filter
def relative(moment) -> str:
    """'in 3 hours' or '12 minutes ago', the way a reviewer says it."""
    if moment is None:
        return ""
    now = timezone.now()
    if moment >= now:
        return f"in {timeuntil(moment, now, depth=1)}"
    return f"{timesince(moment, now, depth=1)} ago"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


# Agent data as indented JSON text; the template escapes it like any other text.
register.filter("pretty_json", pretty_json)
# Agent text with bidi, zero-width and control characters written out as \uXXXX; still escaped.
register.filter("visible", visible)


@register.filter
def parse_time(value):
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


@register.filter
def notice_level(level) -> str:
    return message_constants.DEFAULT_TAGS.get(level, "info")
