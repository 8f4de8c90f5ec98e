"""Agent text shown to people: visible where it would hide, and JSON indented.

Bidi controls reorder what follows them (`invoice\\u202efdp.exe` reads "invoiceexe.pdf"), and
zero-width and other format characters, C0 and C1 controls show nothing at all. Whatever an
agent wrote is shown with those characters as visible escapes, on every page, in the admin and
in email; templates escape the result like any other text, it is never marked safe.
"""

import json
import re

from django.contrib import admin

# C0 (tab and newline aside: they only space text), DEL and C1, zero-width and direction
# marks, bidi embeddings, overrides and isolates, invisible operators, line and paragraph
# separators, the Arabic letter mark, deprecated format characters, and the byte-order mark.
HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def visible(text) -> str:
    """The text with every HIDDEN character written as \\uXXXX; anything else as str()."""
    text = "" if text is None else str(text)
    return HIDDEN.sub(_escape, text)


def pretty_json(value) -> str:
    """Indented JSON, keys sorted, non-ASCII kept readable but HIDDEN characters escaped.

    Those can only stand inside JSON strings, where \\uXXXX is the same character: the text
    still parses back to the same value.
    """
    return visible(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def visible_column(field: str, description: str | None = None):
    """An admin change-list column for a text field that agents fill: made visible, escaped."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj) -> str:
        return visible(getattr(obj, field))

    column.__name__ = field
    return column


class VisibleValuesListFilter(admin.AllValuesFieldListFilter):
    """An admin list filter offering a field's values, as agents wrote them, made visible."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": visible(choice["display"])}
