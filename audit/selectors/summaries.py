"""An event in words (each app registers the words for its kinds in audit.kinds), and Entry: an
event as the timeline and the browser show it."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit import kinds
from audit.jsontext import pretty_json
from audit.words import get


def event_summary(kind: str, data, *, step: int | None = None) -> str:
    """One line in words; plain text, for the template to escape like any other."""
    describe = kinds.summary_for(kind)
    if describe is None:
        return kind
    if step is None:
        step = step_of(data, None)
    try:
        return describe(data, step)
    except (TypeError, ValueError, AttributeError):
        # Whatever a payload holds, the page still renders: the details show it as it is.
        return kind


# approvals.selectors.timeline._STEP_ANCHORS_SQL reads an event's step the same way, in SQL.
_STEP_TEXT = re.compile(r"[0-9]{1,9}")


def step_of(data, packet_step: int | None) -> int | None:
    """The packet's step, else data.step when it is a small whole number."""
    if packet_step is not None:
        return packet_step
    value = get(data, "step", None)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return int(value) if _STEP_TEXT.fullmatch(str(value)) else None


@dataclass
class Entry:
    """One audit event, as the timeline and the browser show it."""

    seq: int
    at: datetime
    kind: str
    actor: str
    data: Any
    execution_id: uuid.UUID | None = None
    packet_id: uuid.UUID | None = None
    thread_id: str = ""
    workflow: str = ""
    step: int | None = None
    packet_visible: bool = False

    is_gap = False

    @property
    def summary(self) -> str:
        return event_summary(self.kind, self.data, step=self.step)

    @property
    def data_json(self) -> str:
        return pretty_json(self.data)
