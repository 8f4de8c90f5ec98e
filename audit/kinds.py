"""The kinds of event in the record, registered by the app that writes them.

The record stores a kind as its plain string. This registry tells the pages, the admin and the
browser's filter what each kind is called and how to say an event of it in one line. Each app
registers its own TextChoices when it is ready, so audit never imports the apps it records.
"""

from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

# data, the step it belongs to (or None) -> one line in words.
Summary = Callable[[Any, int | None], str]

_labels: dict[str, str] = {}
_summaries: dict[str, Summary] = {}


def register(kinds: type[models.TextChoices], summaries: Mapping[str, Summary]) -> None:
    """Add an app's kinds and the words for each; registering the same kinds again is harmless."""
    for value, label in kinds.choices:
        if _labels.get(value, label) != label:
            raise ImproperlyConfigured(f"event kind {value!r} is registered twice")
        _labels[value] = label
    unknown = set(summaries) - set(kinds.values)
    if unknown:
        raise ImproperlyConfigured(f"words for unregistered event kinds: {sorted(unknown)}")
    _summaries.update({str(kind): words for kind, words in summaries.items()})


def choices() -> list[tuple[str, str]]:
    """Every registered kind as (value, label): AuditEvent.kind's choices, in registration order."""
    return list(_labels.items())


def summary_for(kind: str) -> Summary | None:
    return _summaries.get(kind)
