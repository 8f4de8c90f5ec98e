"""Input behind the reviewer dashboard: the queue's filters and the packet's action fields.

They validate only. A field that fails raises ValidationFailed naming it, in the words the
packet page shows under the field ("Comment contains a NUL character").
"""

import json
from typing import NoReturn

from django import forms

from approvals.errors import ValidationFailed
from approvals.gate_request import json_problems
from gatekeeper.text_input import FilterField, text_problem

# A reviewer's note, kept in the decision record; a page of text is plenty.
MAX_COMMENT_LENGTH = 10_000


class QueueFilterForm(forms.Form):
    """The queue's filters and search. A value that cannot match anything is left out and said
    so, rather than refusing the whole queue: the reviewer still sees their packets."""

    q = FilterField(label="Search")
    workflow = FilterField(label="Workflow")
    owner = FilterField(label="Owner")
    policy = FilterField(label="Policy")

    def usable(self) -> dict[str, str]:
        """The filters that passed, by name; a filter with an error is left out."""
        self.is_valid()
        return {name: self.cleaned_data[name] for name in self.fields if name in self.cleaned_data}

    def ignored(self) -> tuple[str, ...]:
        """One sentence per filter left out, saying which and why."""
        return tuple(
            f"{self.fields[name].label}: {' '.join(errors)} This filter was ignored."
            for name, errors in self.errors.items()
        )


def _refuse(field: str, message: str) -> NoReturn:
    raise ValidationFailed.of([{"field": field, "message": message}])


def review_comment(raw: str) -> str:
    """The comment field of a packet action, as the record will keep it."""
    if len(raw) > MAX_COMMENT_LENGTH:
        _refuse("comment", f"is longer than {MAX_COMMENT_LENGTH:,} characters")
    problem = text_problem(raw)
    if problem:
        _refuse("comment", problem)
    return raw


def review_edited_args(raw: str):
    """None when the reviewer left the args as they were; the parsed object otherwise."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as error:
        _refuse("args", f"is not valid JSON ({error})")
    except RecursionError:
        _refuse("args", "is nested too deeply")
    if not isinstance(value, dict):
        _refuse("args", "must be a JSON object")
    problems = json_problems(value)
    if problems:
        where = "args" + problems[0]["field"].removeprefix("body")
        _refuse("args", f"{problems[0]['message']} (at {where})")
    return value


def review_happened(raw) -> bool:
    """Reconcile's answer: did the write happen?"""
    if raw not in ("yes", "no"):
        _refuse("happened", "choose yes or no")
    return raw == "yes"
