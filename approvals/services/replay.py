"""Replay: what a set of policies would have answered to the recorded gate checks (DESIGN 2).

Nothing is written. The checks stream from a server-side cursor in chunks, only the columns
the evaluation reads, and each is decided by `facts_verdict`, the gate's own evaluation, so a
replay says exactly what the gate would have answered (bar the execution checks, which a
recorded check has already passed).
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from approvals.policy_rules import GateFacts, Rule, Verdict
from approvals.services.policies import facts_verdict, policy_rules, rule_of_document

CHUNK = 5000
EXAMPLES_PER_KIND = 5
# The workflow is the execution's: the gate refuses a check whose request names another.
_CHECKS_SQL = """
SELECT c.id, c.created_at, c.decision, c.policy_name, c.tool, c.side_effect, e.workflow,
       c.request -> 'action' -> 'args', c.request -> 'risk'
  FROM approvals_gatecheck c
  JOIN approvals_execution e ON e.id = c.execution_id
 WHERE c.created_at >= %s
"""


@dataclass(frozen=True)
class ReplayedCheck:
    """One recorded check whose answer would change: what it was, what it would be."""

    check_id: str
    created_at: datetime
    workflow: str
    tool: str
    was: str
    was_policy: str
    now: str
    now_policy: str
    reason: str


@dataclass
class ReplayReport:
    since: datetime
    checks: int = 0
    # (recorded decision, replayed decision) -> how many checks, for the changed ones only
    kinds: Counter = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[ReplayedCheck]] = field(default_factory=dict)
    # Same decision, decided by another policy than the one recorded.
    other_policy: int = 0

    @property
    def changed(self) -> int:
        return sum(self.kinds.values())

    def by_kind(self) -> list[tuple[str, str, int, list[ReplayedCheck]]]:
        """(was, now, count, examples), most frequent change first."""
        return [
            (was, now, count, self.examples[(was, now)])
            for (was, now), count in sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        ]


def rules_with_documents(documents: list[dict], *, enforce: bool = False) -> list[Rule]:
    """The stored policies with these validated documents in place of (or beside) the stored
    ones of the same name, as importing them would leave them. `enforce` evaluates the
    documents as enforced whatever their mode (a draft being tried)."""
    stored = {rule.name: rule for rule in policy_rules()}
    for document in documents:
        earlier = stored.get(document["name"])
        rule = rule_of_document(document, version=earlier.version + 1 if earlier else 1)
        stored[rule.name] = replace(rule, mode="enforce") if enforce else rule
    return list(stored.values())


def replay(rules: list[Rule], *, days: float, examples: int = EXAMPLES_PER_KIND) -> ReplayReport:
    """Decide every gate check recorded in the last `days` days under `rules`; write nothing."""
    report = ReplayReport(since=timezone.now() - timedelta(days=days))
    for check, verdict in replayed_checks(rules, since=report.since):
        report.checks += 1
        now_policy = verdict.rule.name if verdict.rule else ""
        if verdict.decision == check.decision:
            report.other_policy += now_policy != check.policy_name
            continue
        kind = (check.decision, verdict.decision)
        report.kinds[kind] += 1
        shown = report.examples.setdefault(kind, [])
        if len(shown) < examples:
            shown.append(
                ReplayedCheck(
                    check_id=str(check.id),
                    created_at=check.created_at,
                    workflow=check.workflow,
                    tool=check.tool,
                    was=check.decision,
                    was_policy=check.policy_name,
                    now=verdict.decision,
                    now_policy=now_policy,
                    reason=verdict.reason,
                )
            )
    return report


class RecordedCheck(NamedTuple):
    """The columns of a recorded check that replay reads."""

    id: uuid.UUID
    created_at: datetime
    decision: str
    policy_name: str
    tool: str
    side_effect: str
    workflow: str
    args: str | None  # jsonb as text
    risk: str | None

    def facts(self) -> GateFacts:
        """The facts the gate evaluated, read back from the stored request."""
        risk = json.loads(self.risk) if self.risk else {}
        score = risk.get("score")
        return GateFacts(
            workflow=self.workflow,
            tool=self.tool,
            args=json.loads(self.args) if self.args else {},
            side_effect=self.side_effect,
            risk_score=float(score) if score is not None else None,
            risk_labels=tuple(risk.get("labels") or ()),
        )


def replayed_checks(
    rules: list[Rule], *, since: datetime
) -> Iterator[tuple[RecordedCheck, Verdict]]:
    """Each check recorded since `since` with the verdict `rules` give it, streamed in chunks."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction:
            # The database itself then refuses any write.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
        with connection.chunked_cursor() as cursor:
            cursor.execute(_CHECKS_SQL, [since])
            while rows := cursor.fetchmany(CHUNK):
                for row in rows:
                    check = RecordedCheck(*row)
                    yield check, facts_verdict(check.facts(), rules)
