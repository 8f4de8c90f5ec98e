"""Reads of the decision record: an execution's timeline and the auditors' filtered browser.

Both cost a fixed number of queries however long the record grows. The browser pages by keyset
on (at, seq), never by OFFSET and never with COUNT(*), so its thousandth page costs what its
first does.
"""

import json
import re
import uuid
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from psycopg import errors as pg_errors
from psycopg import sql

from approvals.dashboard import packets_visible_to
from approvals.gaps import find_gaps
from approvals.models import Execution, GateCheck, PausePacket, StepOutcome
from audit.jsontext import pretty_json
from audit.models import AuditEvent

AUDIT_PERMISSION = "audit.view_auditevent"
BROWSE_PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 500
# Nested executions shown inline below the page's own; deeper ones are linked, not expanded.
MAX_NESTING = 4
# How far up a parent chain is followed to find the root of a run.
MAX_ANCESTRY = 32
# No index serves a substring of the event text, so searching it scans the events the other
# filters leave. Past TEXT_SEARCH_TIMEOUT_MS the browser searches thread ids only (an index
# lookup) and says so; past BROWSE_TIMEOUT_MS any page query gives up.
TEXT_SEARCH_TIMEOUT_MS = 2000
BROWSE_TIMEOUT_MS = 5000

EVENTS_FROM = sql.SQL("{events} e LEFT JOIN {executions} x ON x.id = e.execution_id").format(
    events=sql.Identifier(AuditEvent._meta.db_table),
    executions=sql.Identifier(Execution._meta.db_table),
)


# Who may read what


def can_browse(user) -> bool:
    """The audit browser and export: superusers and holders of audit.view_auditevent."""
    return user.has_perm(AUDIT_PERMISSION)


def executions_visible_to(user) -> QuerySet[Execution]:
    """Executions whose record the user may read (DESIGN section 5).

    Auditors and superusers read every one; others the executions they own (as the owning user or
    a member of the owning group) and those with a packet they may view. One query.
    """
    executions = Execution.objects.all()
    if not user.is_active:
        return executions.none()
    if can_browse(user):
        return executions
    # The same reading of an owner string as approvals.permissions.owner_principal.
    owned_by_group = (
        Q(owner__in=user.groups.values("name"))
        & ~Q(owner__startswith="user:")
        & ~Q(owner__startswith="service:")
    )
    return executions.filter(
        Q(owner=f"user:{user.get_username()}")
        | owned_by_group
        | Exists(packets_visible_to(user).filter(execution=OuterRef("pk")))
    )


def execution_for_user(*, user, execution_id) -> Execution | None:
    return (
        executions_visible_to(user)
        .select_related("service_account")
        .filter(id=execution_id)
        .first()
    )


# What each event says, in words

DECISION_WORDS = {
    "allow": "allowed",
    "block": "blocked",
    "require_approval": "sent for approval",
    "skip": "skipped",
}
OUTCOME_WORDS = {
    "landed": "the write happened",
    "not_landed": "the write did not happen",
    "indeterminate": "nobody knows yet whether the write happened",
    "failed": "the step failed",
}


def _get(data, key, default=""):
    value = data.get(key, default) if isinstance(data, dict) else default
    return default if value is None else value


def _shorten(text, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(value) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _policy_words(policy) -> str:
    name = _get(policy, "name")
    if not name:
        return "with no policy matching (the default)"
    return f"by policy {name} v{_get(policy, 'version', '?')}"


def _step_words(step, data) -> str:
    name = _get(data, "step_name")
    label = f"Step {step}" if step is not None else "A step"
    return f"{label} ({name})" if name else label


def _gate_checked(data, step):
    decision = str(_get(data, "decision"))
    words = f"{_step_words(step, data)}: {_get(data, 'tool', 'an action')} "
    words += f"{DECISION_WORDS.get(decision, decision)} {_policy_words(_get(data, 'policy', {}))}"
    side_effect = _get(data, "side_effect", "not_started")
    if side_effect != "not_started":
        words += f"; the write may already have happened ({side_effect})"
    return words


def _packet_created(data, step):
    needed = _get(data, "required_approvals", 1)
    plural = "approval" if needed == 1 else "approvals"
    return (
        f"Approval requested for step {'?' if step is None else step} "
        f"({_get(data, 'tool', 'an action')}): "
        f"{needed} {plural} needed from {_get(data, 'approvers', 'the approvers')}"
    )


def _packet_voted(data, step):
    words = f"Vote to approve: {_get(data, 'votes', '?')} of {_get(data, 'required', '?')}"
    return _with_comment(words, _get(data, "comment"))


def _packet_edited(data, step):
    diff = _get(data, "diff", {})
    parts = [
        f"{verb} {', '.join(sorted(str(key) for key in _get(diff, group, {})))}"
        for group, verb in (("changed", "changed"), ("added", "added"), ("removed", "removed"))
        if _get(diff, group, {})
    ]
    return _shorten("Args edited before approving: " + ("; ".join(parts) or "no change"))


def _with_comment(text: str, comment) -> str:
    return f"{text}: “{_shorten(comment)}”" if comment else text


def _decided(verb: str, outcome: str):
    """ "Approved by alice, bob: the step may run", and the comment when there is one."""

    def words(data, step):
        names = _names(_get(data, "decided_by", []))
        text = f"{verb} by {names}: {outcome}" if names else f"{verb}: {outcome}"
        return _with_comment(text, _get(data, "comment"))

    return words


def _packet_terminated(data, step):
    reason = _get(data, "reason")
    return (
        f"Terminated ({_shorten(reason, 80)}): the step is blocked"
        if reason
        else ("Terminated: the step is blocked")
    )


def _owner_changed(data, step):
    words = f"Owner changed from {_get(data, 'from') or 'nobody'} to {_get(data, 'to')}"
    return _with_comment(words, _get(data, "reason"))


def _taken_over(data, step):
    return (
        f"Taken over: {_get(data, 'to')} now owns the execution "
        f"(was {_get(data, 'from') or 'nobody'}); its open approvals end"
    )


def _step_outcome(data, step):
    side_effect = str(_get(data, "side_effect"))
    words = f"Outcome of step {'?' if step is None else step}: "
    words += OUTCOME_WORDS.get(side_effect, side_effect)
    if _get(data, "reconciled", False):
        words += " (recorded by a reviewer reconciling it)"
    if _get(data, "gated", True) is False:
        words += "; this step was never gated"
    return words


def _notification(verb):
    def words(data, step):
        to = _names(_get(data, "to", [])) or "nobody"
        text = f"Notification “{_get(data, 'topic', 'message')}” {verb} {to}"
        missing = _names(_get(data, "no_address", []))
        return f"{text}; no email address for {missing}" if missing else text

    return words


SUMMARIES = {
    AuditEvent.Kind.GATE_CHECKED: _gate_checked,
    AuditEvent.Kind.PACKET_CREATED: _packet_created,
    AuditEvent.Kind.PACKET_VOTED: _packet_voted,
    AuditEvent.Kind.PACKET_EDITED: _packet_edited,
    AuditEvent.Kind.PACKET_COMMENTED: lambda data, step: _with_comment(
        "Comment", _get(data, "comment")
    ),
    AuditEvent.Kind.PACKET_APPROVED: _decided("Approved", "the step may run"),
    AuditEvent.Kind.PACKET_REJECTED: _decided("Rejected", "the step is blocked"),
    AuditEvent.Kind.PACKET_EXPIRED: lambda data, step: (
        "Expired: nobody decided before the deadline, so the step is blocked"
    ),
    AuditEvent.Kind.PACKET_RE_REVIEW: lambda data, step: (
        "Sent back for re-review: the context went stale and the agent must refresh it"
    ),
    AuditEvent.Kind.PACKET_RECONCILING: lambda data, step: (
        "Sent to reconcile: the write may already have happened"
    ),
    AuditEvent.Kind.PACKET_APPLIED: _decided(
        "Reconciled", "the write happened, so the step is skipped"
    ),
    AuditEvent.Kind.PACKET_TERMINATED: _packet_terminated,
    AuditEvent.Kind.PACKET_SUPERSEDED: lambda data, step: (
        "Superseded: replaced by a new approval with fresh context"
    ),
    AuditEvent.Kind.EXECUTION_OWNER_CHANGED: _owner_changed,
    AuditEvent.Kind.EXECUTION_TAKEN_OVER: _taken_over,
    AuditEvent.Kind.STEP_OUTCOME: _step_outcome,
    AuditEvent.Kind.NOTIFICATION_QUEUED: _notification("queued for"),
    AuditEvent.Kind.NOTIFICATION_SENT: _notification("sent to"),
    AuditEvent.Kind.WEBHOOK_DELIVERED: lambda data, step: (
        f"Webhook {_get(data, 'topic', 'event')} delivered to "
        f"{_get(data, 'to', 'the orchestrator')}"
    ),
    AuditEvent.Kind.POLICY_CHANGED: lambda data, step: (
        f"Policy {_get(data, 'policy', '?')} saved as version {_get(data, 'version', '?')}"
    ),
    AuditEvent.Kind.AUTH_LOGIN: lambda data, step: "Signed in",
    AuditEvent.Kind.AUTH_LOGIN_FAILED: lambda data, step: "Sign-in failed",
    AuditEvent.Kind.AUTH_LOCKED_OUT: lambda data, step: "Locked out after repeated failed sign-ins",
}


def event_summary(kind: str, data, *, step: int | None = None) -> str:
    """One line in words; plain text, for the template to escape like any other."""
    describe = SUMMARIES.get(kind)
    if describe is None:
        return kind
    if step is None:
        step = _step_of(data, None)
    try:
        return describe(data, step)
    except (TypeError, ValueError, AttributeError):
        # Whatever a payload holds, the page still renders: the details show it as it is.
        return kind


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


# The audit browser


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class AuditFilters:
    """The browser's and the export's filters (DESIGN section 7), already validated.

    `until` is exclusive: a date given alone reaches to the end of that day. `q` matches a
    substring of the execution's thread id or, unless `text` is off, of the event's payload.
    """

    q: str = ""
    kind: str = ""
    workflow: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: bool = True

    def where(self) -> sql.Composable:
        """The filters as SQL over EVENTS_FROM (`e` the event, `x` its execution).

        Values go in as psycopg literals rather than bound parameters because COPY cannot take
        parameters; the page and the export share this one composition so they filter alike.
        """
        conditions: list[sql.Composable] = [sql.SQL("TRUE")]
        if self.q:
            pattern = sql.Literal(f"%{escape_like(self.q)}%")
            matches = sql.SQL("x.thread_id ILIKE {}").format(pattern)
            if self.text:
                matches = sql.SQL("({} OR e.data::text ILIKE {})").format(matches, pattern)
            conditions.append(matches)
        for column, value in (
            ("e.kind", self.kind),
            ("e.actor", self.actor),
            ("x.workflow", self.workflow),
        ):
            if value:
                conditions.append(sql.SQL(column + " = {}").format(sql.Literal(value)))
        if self.since is not None:
            conditions.append(sql.SQL("e.at >= {}").format(sql.Literal(self.since)))
        if self.until is not None:
            conditions.append(sql.SQL("e.at < {}").format(sql.Literal(self.until)))
        return sql.SQL(" AND ").join(conditions)


class SearchTooSlow(Exception):
    """The page's query ran past its statement timeout."""


@dataclass(frozen=True)
class BrowsePage:
    entries: list[Entry]
    newer: int | None
    older: int | None
    # The text search took too long, so only thread ids were searched.
    threads_only: bool = False


def audit_events_page(
    *,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int | None = None,
) -> BrowsePage:
    """A page of events, newest first; `before`/`after` are the seq of a row on the next page.

    The keyset is (at, seq): time ranges and the newest rows are then both an index range scan on
    `at`, wherever in the record they lie. `newer` and `older` are the cursors for the
    neighbouring pages, None where there is none. A text search that runs too long falls back to
    thread ids only (BrowsePage.threads_only).
    """
    size = size or BROWSE_PAGE_SIZE
    if filters.q and filters.text:
        try:
            return _events_page(filters, before, after, size, TEXT_SEARCH_TIMEOUT_MS)
        except SearchTooSlow:
            filters = replace(filters, text=False)
            page = _events_page(filters, before, after, size, BROWSE_TIMEOUT_MS)
            return replace(page, threads_only=True)
    return _events_page(filters, before, after, size, BROWSE_TIMEOUT_MS)


def _events_page(filters, before, after, size, timeout_ms) -> BrowsePage:
    newest_first = after is None
    conditions = [filters.where()]
    if before is not None or after is not None:
        conditions.append(
            sql.SQL("(e.at, e.id) {} (SELECT at, id FROM {} WHERE id = {})").format(
                sql.SQL("<" if newest_first else ">"),
                sql.Identifier(AuditEvent._meta.db_table),
                sql.Literal(before if newest_first else after),
            )
        )
    query = sql.SQL(
        "SELECT e.id, e.at, e.kind, e.actor, e.execution_id, e.packet_id, e.data::text, "
        "x.thread_id, x.workflow FROM {source} WHERE {where} "
        "ORDER BY e.at {direction}, e.id {direction} LIMIT {limit}"
    ).format(
        source=EVENTS_FROM,
        where=sql.SQL(" AND ").join(conditions),
        direction=sql.SQL("DESC" if newest_first else "ASC"),
        limit=sql.Literal(size + 1),
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
            cursor.execute(query)
            rows = cursor.fetchall()
    except OperationalError as error:
        if isinstance(error.__cause__, pg_errors.QueryCanceled):
            raise SearchTooSlow from error
        raise
    more = len(rows) > size
    rows = rows[:size]
    if not newest_first:
        rows.reverse()
    entries = [
        Entry(
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            data=json.loads(text),
            execution_id=execution_id,
            packet_id=packet_id,
            thread_id=thread_id or "",
            workflow=workflow or "",
        )
        for seq, at, kind, actor, execution_id, packet_id, text, thread_id, workflow in rows
    ]
    if not entries:
        return BrowsePage(entries, None, None)
    if newest_first:
        newer = entries[0].seq if before is not None else None
        older = entries[-1].seq if more else None
    else:
        newer = entries[0].seq if more else None
        older = entries[-1].seq
    return BrowsePage(entries, newer, older)


# An execution's timeline

_STEP_TEXT = re.compile(r"[0-9]{1,9}")


def _step_of(data, packet_step: int | None) -> int | None:
    if packet_step is not None:
        return packet_step
    value = _get(data, "step", None)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return int(value) if _STEP_TEXT.fullmatch(str(value)) else None


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
# _step_of in SQL; the two must agree. Deliveries (email, webhooks) happen after the fact, so
# they never mark where a step's record ends.
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
    AuditEvent.Kind.NOTIFICATION_QUEUED,
    AuditEvent.Kind.NOTIFICATION_SENT,
    AuditEvent.Kind.WEBHOOK_DELIVERED,
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
    """Gaps of each execution, as approvals.selectors.execution_steps finds them for one.

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
            [AuditEvent.Kind.STEP_OUTCOME.value, ids, [kind.value for kind in DELIVERY_KINDS]],
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
                step=_step_of(data, packet_step),
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
