"""Text typed into a page, before it reaches PostgreSQL: what can be stored or searched for.

PostgreSQL text holds no NUL and UTF-8 has no lone surrogate (json.loads makes one from
"\\ud800"). Such a value can match no row and be written to none: sent anyway it is a DataError,
a 500. Every page that reads a filter, a search or a form field checks it here, so the refusal
reads the same everywhere (JSON values: approvals.gate_request.json_problems, built on this).
"""

from django import forms
from django.core import validators
from django.core.exceptions import ValidationError

# Longest value a list filter or search box takes; longer matches no thread id, tool or name.
MAX_FILTER_LENGTH = 200


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot take this text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (a lone surrogate)"
    return None


def validate_storable(value) -> None:
    """A form validator: refuses text PostgreSQL could not store or compare."""
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem[:1].upper() + problem[1:] + ".", code="unstorable")


def query_problems(query) -> dict[str, str]:
    """{name: problem} for every value of a QueryDict (a query string or form body) that
    PostgreSQL could not take; the name itself is checked too."""
    problems = {}
    for name, values in query.lists():
        for value in (name, *values):
            problem = text_problem(value)
            if problem:
                problems[name] = problem
                break
    return problems


class FilterField(forms.CharField):
    """A list page's filter or search box: optional, stripped, MAX_FILTER_LENGTH at most, and
    only text PostgreSQL can take (Django's own check refuses NUL only)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", MAX_FILTER_LENGTH)
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, validators.ProhibitNullCharactersValidator)
        ] + [validate_storable]
