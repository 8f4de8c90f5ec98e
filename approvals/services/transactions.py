"""The transaction of a top-level action: durable, so that nesting one inside another (and so
delaying its commit, its notifications and its record past the caller's) fails loudly.

The demo plays a history of many actions as one transaction: inside seeding() the actions'
own transactions nest in it.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_seeding: ContextVar[bool] = ContextVar("seeding", default=False)


def action_atomic():
    return transaction.atomic(durable=not _seeding.get())


@contextmanager
def seeding():
    """One transaction around many actions (the demo's seed), whose own then nest in it."""
    token = _seeding.set(True)
    try:
        with transaction.atomic():
            yield
    finally:
        _seeding.reset(token)
