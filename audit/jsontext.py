"""Agent text shown to people: visible where it would hide, and JSON indented.

Bidi controls reorder what follows them (`invoice\\u202efdp.exe` reads "invoiceexe.pdf"), and
zero-width and other format characters, C0 and C1 controls show nothing at all. Whatever an
agent wrote is shown with those characters as visible escapes, on every page, in the admin and
in email; templates escape the result like any other text, it is never marked safe.
"""

import functools
import json
import re

from django.contrib import admin

from audit.invisible import character_class


@functools.cache
def _hidden() -> re.Pattern:
    # Every character of the one rule (audit.invisible) but tab and newline, which only space
    # text. Built on first use: listing the rule's characters takes a noticeable moment.
    return re.compile("[" + character_class(except_for="\t\n") + "]")


def __getattr__(name: str):
    if name == "HIDDEN":
        return _hidden()
    raise AttributeError(name)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # as JSON writes it, a surrogate pair, so the text parses back the same
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def visible(text) -> str:
    """The text with every HIDDEN character written as \\uXXXX; anything else as str()."""
    text = "" if text is None else str(text)
    return _hidden().sub(_escape, text)


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
