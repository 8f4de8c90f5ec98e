"""An execution's timeline: its record and its nested executions', with gaps flagged in place.

The page costs a fixed number of queries however long the record or deep the tree.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.db.models.expressions import RawSQL

from approvals.events import EventKind
from approvals.gaps import find_gaps
from approvals.models import Execution, GateCheck, PausePacket, StepOutcome
from approvals.selectors.executions import executions_visible_to
from approvals.selectors.packets import packets_visible_to
from audit.models import AuditEvent
from audit.selectors.summaries import Entry, step_of

TIMELINE_PAGE_SIZE = 500
# Nested executions shown inline below the page's own; deeper ones are linked, not expanded.
MAX_NESTING = 4
# How far up a parent chain is followed to find the root of a run.
MAX_ANCESTRY = 32


GAP_WORDS = {
    "ungated": "An outcome was recorded for step {step}, which was never gated",
    "no_outcome": "Step {step} was allowed but no outcome was recorded",
    "skipped_index": "Step {step} was never gated, though steps before and after it were",
}
SKIPPED_RANGE_WORDS = (
    "Steps {step} to {last} were never gated, though steps before and after them were"
)


@dataclass
class GapMark:
    """A gap of DESIGN section 8 (a run of skipped indexes makes one), placed at its step."""

    execution: Execution
    step: int
    kind: str
    last: int | None = None
    # The event it stands next to, and on which side; None when the record has no such event.
    anchor: int | None = None
    before_anchor: bool = False
    # Where the page links to it: here, or the page that starts at its event.
    link: str = ""

    is_gap = True

    @property
    def text(self) -> str:
        if self.last is not None and self.last != self.step:
            return SKIPPED_RANGE_WORDS.format(step=self.step, last=self.last)
        return GAP_WORDS[self.kind].format(step=self.step)

    @property
    def html_id(self) -> str:
        return f"gap-{self.execution.id}-{self.step}-{self.kind}"


@dataclass
class Section:
    """One execution's part of the timeline, with its nested executions below it."""

    execution: Execution
    depth: int
    visible: bool = True
    # Deeper than MAX_NESTING below the page's execution: linked, not expanded.
    linked_only: bool = False
    items: list = field(default_factory=list)
    gaps: list[GapMark] = field(default_factory=list)
    children: list["Section"] = field(default_factory=list)

    @property
    def inline(self) -> bool:
        return self.visible and not self.linked_only


@dataclass
class Timeline:
    section: Section
    # The root of the run when this execution is nested and the user may read the root.
    root: Execution | None
    root_hidden: bool
    gaps: list[GapMark]
    newer: int | None
    older: int | None


_ANCESTORS_SQL = """
    WITH RECURSIVE chain(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM approvals_execution WHERE id = %s
        UNION
        SELECT up.id, up.parent_id, chain.depth + 1
        FROM approvals_execution up JOIN chain ON up.id = chain.parent_id
        WHERE chain.depth < %s
    )
    SELECT id FROM chain
"""
_DESCENDANTS_SQL = """
    WITH RECURSIVE tree(id, depth) AS (
        SELECT id, 0 FROM approvals_execution WHERE id = %s
        UNION
        SELECT child.id, tree.depth + 1
        FROM approvals_execution child JOIN tree ON child.parent_id = tree.id
        WHERE tree.depth < %s
    )
    SELECT id FROM tree
"""
# An event's step: its packet's step, else data.step when that is a small whole number. This is
# audit.selectors.summaries.step_of in SQL; the two must agree. Deliveries (email, webhooks)
# happen after the fact, so they never mark where a step's record ends.
_STEP_ANCHORS_SQL = """
    SELECT e.execution_id,
           COALESCE(p.step_index, CASE WHEN e.data ->> 'step' ~ '^[0-9]{1,9}$'
                                       THEN (e.data ->> 'step')::integer END) AS step,
           MIN(e.id), MAX(e.id), MIN(e.id) FILTER (WHERE e.kind = %s)
    FROM audit_auditevent e LEFT JOIN approvals_pausepacket p ON p.id = e.packet_id
    WHERE e.execution_id = ANY(%s) AND e.kind <> ALL(%s)
    GROUP BY 1, 2
"""
DELIVERY_KINDS = (
    EventKind.NOTIFICATION_QUEUED,
    EventKind.NOTIFICATION_SENT,
    EventKind.WEBHOOK_DELIVERED,
)


def _family(user, execution: Execution) -> dict:
    """The execution, its ancestors and descendants (bounded), each marked visible or not."""
    return {
        relative.id: relative
        for relative in Execution.objects.filter(
            # Constant SQL with bound parameters: the ORM has no recursive CTE.
            Q(id__in=RawSQL(_ANCESTORS_SQL, [execution.id, MAX_ANCESTRY]))  # noqa: S611
            | Q(id__in=RawSQL(_DESCENDANTS_SQL, [execution.id, MAX_NESTING + 1]))  # noqa: S611
        )
        .select_related("service_account")
        .annotate(visible=Exists(executions_visible_to(user).filter(pk=OuterRef("pk"))))
        .order_by("created_at", "id")
    }


def _root_of(execution: Execution, family: dict) -> Execution | None:
    current, seen = execution, {execution.id}
    while current.parent_id in family and current.parent_id not in seen:
        current = family[current.parent_id]
        seen.add(current.id)
    return None if current is execution else current


def _sections(execution: Execution, family: dict) -> Section:
    children = defaultdict(list)
    for relative in family.values():
        children[relative.parent_id].append(relative)
    seen = {execution.id}

    def build(node: Execution, depth: int) -> Section:
        # The page's own execution passed the access check; each nested one is checked here.
        section = Section(
            execution=node,
            depth=depth,
            visible=depth == 0 or node.visible,
            linked_only=depth > MAX_NESTING,
        )
        if section.inline:
            for child in children[node.id]:
                if child.id not in seen:
                    seen.add(child.id)
                    section.children.append(build(child, depth + 1))
        return section

    return build(execution, 0)


def _walk(section: Section):
    yield section
    for child in section.children:
        yield from _walk(child)


def _merge_skipped(marks: list[GapMark]) -> list[GapMark]:
    """Consecutive skipped indexes read as one gap: "steps 4 to 9 were never gated"."""
    merged: list[GapMark] = []
    for mark in marks:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and mark.kind == previous.kind == "skipped_index"
            and mark.step == (previous.last or previous.step) + 1
        ):
            previous.last = mark.step
        else:
            merged.append(mark)
    return merged


def _gaps_by_execution(sections: dict, user) -> tuple[dict, dict]:
    """Gaps of each execution, as approvals.selectors.executions.execution_steps finds them for one.

    The same three reads, made once for the whole tree so the page's query count stays fixed.
    Also returns each packet's step and whether the user may open it.
    """
    ids = list(sections)
    final: dict = defaultdict(dict)
    for execution_id, index, decision in (
        GateCheck.objects.filter(execution_id__in=ids)
        .order_by("created_at")
        .values_list("execution_id", "step_index", "decision")
    ):
        final[execution_id][index] = decision
    packets = {}
    for execution_id, index, packet_id, decision, visible in (
        PausePacket.objects.filter(execution_id__in=ids)
        .order_by("created_at")
        .annotate(visible=Exists(packets_visible_to(user).filter(pk=OuterRef("pk"))))
        .values_list("execution_id", "step_index", "id", "decision", "visible")
    ):
        packets[packet_id] = (index, visible)
        if index in final[execution_id]:
            final[execution_id][index] = decision or "require_approval"
    outcomes: dict = defaultdict(set)
    for execution_id, index in StepOutcome.objects.filter(execution_id__in=ids).values_list(
        "execution_id", "step_index"
    ):
        outcomes[execution_id].add(index)
    gaps = {
        execution_id: _merge_skipped(
            [
                GapMark(sections[execution_id].execution, step=gap["step"], kind=gap["kind"])
                for gap in find_gaps(final[execution_id], outcomes[execution_id])
            ]
        )
        for execution_id in ids
    }
    return gaps, packets


def _anchor_gaps(gaps: dict) -> None:
    """Pin each gap to an event of the whole record, whichever page that event is on.

    An ungated outcome stands after that outcome; a missing outcome after the step's last event
    (deliveries aside); skipped indexes before the first event of a later step.
    """
    ids = [execution_id for execution_id, marks in gaps.items() if marks]
    if not ids:
        return
    first, last, first_outcome = {}, {}, {}
    steps = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            _STEP_ANCHORS_SQL,
            [EventKind.STEP_OUTCOME.value, ids, [kind.value for kind in DELIVERY_KINDS]],
        )
        for execution_id, step, low, high, outcome in cursor.fetchall():
            if step is not None:
                first[execution_id, step] = low
                last[execution_id, step] = high
                first_outcome[execution_id, step] = outcome
                steps[execution_id].append(step)
    for execution_id in ids:
        ordered = sorted(steps[execution_id])
        # later[i]: the first event of any step from ordered[i] on.
        later = [first[execution_id, step] for step in ordered]
        for i in range(len(later) - 2, -1, -1):
            later[i] = min(later[i], later[i + 1])
        for gap in gaps[execution_id]:
            key = (execution_id, gap.step)
            if gap.kind == "ungated":
                gap.anchor = first_outcome.get(key)
            elif gap.kind == "no_outcome":
                gap.anchor = last.get(key)
            else:
                i = bisect_right(ordered, gap.last or gap.step)
                gap.anchor, gap.before_anchor = (later[i] if i < len(later) else None), True


def execution_timeline(
    *,
    user,
    execution: Execution,
    before: int | None = None,
    after: int | None = None,
    size: int | None = None,
) -> Timeline:
    """The execution's decision record, its nested executions' below it, gaps flagged in place.

    A page holds `size` events of the whole tree in seq order, oldest first; `before`/`after`
    page by keyset on seq. A fixed number of queries whatever the size of the record or tree.
    """
    size = size or TIMELINE_PAGE_SIZE
    family = _family(user, execution)
    top = _sections(family[execution.id], family)
    root = _root_of(family[execution.id], family)
    sections = {section.execution.id: section for section in _walk(top) if section.inline}
    gaps, packets = _gaps_by_execution(sections, user)
    _anchor_gaps(gaps)

    events = AuditEvent.objects.filter(execution_id__in=list(sections))
    if before is not None:
        events = events.filter(id__lt=before).order_by("-id")
    else:
        events = events.filter(id__gt=after or 0).order_by("id")
    rows = list(
        events.values_list("id", "at", "kind", "actor", "execution_id", "packet_id", "data")[
            : size + 1
        ]
    )
    more = len(rows) > size
    rows = rows[:size]
    if before is not None:
        rows.reverse()
        newer, older = (rows[-1][0] if rows else None), (rows[0][0] if more else None)
    else:
        newer, older = (rows[-1][0] if more else None), (rows[0][0] if after and rows else None)

    before_marks, after_marks, unanchored = defaultdict(list), defaultdict(list), []
    for marks in gaps.values():
        for gap in marks:
            if gap.anchor is None:
                unanchored.append(gap)
            else:
                (before_marks if gap.before_anchor else after_marks)[gap.anchor].append(gap)
    for seq, at, kind, actor, execution_id, packet_id, data in rows:
        packet_step, packet_visible = packets.get(packet_id, (None, False))
        items = sections[execution_id].items
        items.extend(before_marks.get(seq, []))
        items.append(
            Entry(
                seq=seq,
                at=at,
                kind=kind,
                actor=actor,
                data=data,
                execution_id=execution_id,
                packet_id=packet_id,
                step=step_of(data, packet_step),
                packet_visible=packet_visible,
            )
        )
        items.extend(after_marks.get(seq, []))
    if newer is None:
        # Gaps with no event to stand by close the record, on its last page.
        for gap in unanchored:
            sections[gap.execution.id].items.append(gap)
    events_on_page = {row[0] for row in rows}
    for execution_id, section in sections.items():
        section.gaps = gaps[execution_id]
        for gap in section.gaps:
            gap.link = f"#{gap.html_id}"
            if gap.anchor is not None and gap.anchor not in events_on_page:
                gap.link = f"?after={gap.anchor - 1}#{gap.html_id}"

    return Timeline(
        section=top,
        root=root if root is not None and root.visible else None,
        root_hidden=root is not None and not root.visible,
        gaps=[gap for section in sections.values() for gap in section.gaps],
        newer=newer,
        older=older,
    )
