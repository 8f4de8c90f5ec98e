"""Policy matching (DESIGN section 2): pure functions over plain data, no ORM.

The services turn Policy rows into Rule values and a gate request into GateFacts; everything
here can then be tested exhaustively without a database.
"""

import fnmatch
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "glob", "exists")
EFFECTS = ("allow", "block", "require_approval")
MODES = ("enforce", "shadow")
UNSETTLED_SIDE_EFFECTS = ("indeterminate", "landed")
_MISSING = object()


@dataclass(frozen=True)
class GateFacts:
    workflow: str
    tool: str
    args: dict
    side_effect: str = "not_started"
    risk_score: float | None = None
    risk_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    effect: str
    version: int = 1
    match: dict = field(default_factory=dict)
    enabled: bool = True
    # "shadow": evaluated beside the enforced rules, never deciding (shadow_outcomes).
    mode: str = "enforce"


@dataclass(frozen=True)
class Verdict:
    decision: str
    rule: Rule | None
    reason: str
    # One line per policy considered, for the admin dry run: why it did or did not decide.
    trace: tuple[str, ...] = ()


def resolve_path(args: Any, path: str) -> Any:
    """The value at a dotted path inside args (list items by index), or _MISSING."""
    current = args
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def condition_holds(actual: Any, op: str, expected: Any) -> bool:
    """One condition. A missing value or a type mismatch never holds; only `exists` sees absence."""
    if op == "exists":
        return (actual is not _MISSING) == (expected if isinstance(expected, bool) else True)
    if actual is _MISSING:
        return False
    if op == "eq":
        # Python holds True == 1; JSON does not, and neither do we.
        return actual == expected and isinstance(actual, bool) == isinstance(expected, bool)
    if op == "ne":
        return not condition_holds(actual, "eq", expected)
    if op in ("gt", "gte", "lt", "lte"):
        if not (_is_number(actual) and _is_number(expected)):
            return False
        return {
            "gt": actual > expected,
            "gte": actual >= expected,
            "lt": actual < expected,
            "lte": actual <= expected,
        }[op]
    if op == "in":
        return isinstance(expected, list) and any(
            condition_holds(actual, "eq", v) for v in expected
        )
    if op == "contains":
        if isinstance(actual, list):
            return any(condition_holds(item, "eq", expected) for item in actual)
        if isinstance(actual, str) and isinstance(expected, str):
            return expected in actual
        if isinstance(actual, dict) and isinstance(expected, str):
            return expected in actual
        return False
    if op == "glob":
        return (
            isinstance(actual, str)
            and isinstance(expected, str)
            and fnmatch.fnmatchcase(actual, expected)
        )
    raise ValueError(f"unknown op {op!r}")


def _mismatches(match: dict, facts: GateFacts) -> Iterator[str]:
    """Why a match does not hold for these facts, each reason made only when asked for."""
    workflow = match.get("workflow")
    if workflow is not None and not fnmatch.fnmatchcase(facts.workflow, workflow):
        yield f"workflow {facts.workflow!r} is not {workflow!r}"
    tool = match.get("tool")
    if tool is not None and not fnmatch.fnmatchcase(facts.tool, tool):
        yield f"tool {facts.tool!r} is not {tool!r}"
    min_risk = match.get("min_risk")
    if min_risk is not None and (facts.risk_score is None or facts.risk_score < min_risk):
        yield f"risk {facts.risk_score} is below {min_risk}"
    labels_any = match.get("labels_any")
    if labels_any and not set(labels_any) & set(facts.risk_labels):
        yield f"no label of {sorted(labels_any)} in {sorted(facts.risk_labels)}"
    for condition in match.get("conditions", ()):
        actual = resolve_path(facts.args, condition["path"])
        if not condition_holds(actual, condition["op"], condition.get("value")):
            shown = "missing" if actual is _MISSING else repr(actual)
            expected = condition.get("value")
            path, op = condition["path"], condition["op"]
            yield f"args.{path} ({shown}) fails {op} {expected!r}"


def mismatches(match: dict, facts: GateFacts) -> list[str]:
    """Why a match does not hold for these facts; an empty list means it holds."""
    return list(_mismatches(match, facts))


def holds(match: dict, facts: GateFacts) -> bool:
    """Whether a match holds: stops at the first reason it does not, and words none."""
    return next(_mismatches(match, facts), None) is None


def evaluate(
    rules: Sequence[Rule], facts: GateFacts, *, default_decision: str, explain: bool = True
) -> Verdict:
    """Decide a gate check: the first enabled rule by ascending priority whose match holds.

    A pending action whose side effect may already have happened is never allowed to run:
    whatever the policy says, a human reconciles first. Without `explain` the verdict has no
    trace (the gate and replay answer without one; the dry run shows it): the same decision,
    with no words made for the rules passed over.
    """
    trace = []
    chosen = None
    for rule in sorted(rules, key=_rank):
        if not rule.enabled or rule.mode != "enforce":
            trace.append(
                f"{rule.name}: {'disabled' if not rule.enabled else 'shadow, never decides'}"
            )
            continue
        if not explain:
            if not holds(rule.match, facts):
                continue
        elif reasons := mismatches(rule.match, facts):
            trace.append(f"{rule.name}: no match ({'; '.join(reasons)})")
            continue
        trace.append(f"{rule.name}: matches, effect {rule.effect}")
        chosen = rule
        break
    if chosen is None:
        decision = default_decision
        reason = f"no policy matched; default decision {default_decision}"
    else:
        decision = chosen.effect
        reason = (
            f"policy {chosen.name} v{chosen.version} (priority {chosen.priority}): {chosen.effect}"
        )
    if facts.side_effect in UNSETTLED_SIDE_EFFECTS:
        reason = (
            f"side effect is {facts.side_effect}: a human must reconcile before anything runs "
            f"(would otherwise be: {reason})"
        )
        decision = "require_approval"
    return Verdict(
        decision=decision, rule=chosen, reason=reason, trace=tuple(trace) if explain else ()
    )


def _rank(rule: Rule) -> tuple[int, str]:
    return rule.priority, rule.name


@dataclass(frozen=True)
class ShadowOutcome:
    """What a shadow rule would have made of a check had it been enforced."""

    policy: str
    version: int
    decision: str
    decided_by: str | None  # the rule that would have decided, None for the default
    differs: bool  # from the answer actually given

    def as_json(self) -> dict:
        return {
            "policy": self.policy,
            "version": self.version,
            "decision": self.decision,
            "decided_by": self.decided_by,
            "differs": self.differs,
        }


def shadow_outcomes(
    rules: Sequence[Rule], facts: GateFacts, answer: Verdict, *, default_decision: str
) -> list[ShadowOutcome]:
    """Each enabled shadow rule evaluated as if enforced beside the enforced rules.

    The same `evaluate` decides, over the enforced rules plus that one rule switched to
    enforce, so a shadow verdict is exactly what promoting the rule would answer.
    """
    shadows = [rule for rule in rules if rule.mode != "enforce" and rule.enabled]
    if not shadows:
        return []
    enforced = [rule for rule in rules if rule.mode == "enforce"]
    outcomes = []
    for shadow in shadows:
        verdict = evaluate(
            [*enforced, replace(shadow, mode="enforce")],
            facts,
            default_decision=default_decision,
            explain=False,
        )
        outcomes.append(
            ShadowOutcome(
                policy=shadow.name,
                version=shadow.version,
                decision=verdict.decision,
                decided_by=verdict.rule.name if verdict.rule else None,
                differs=verdict.decision != answer.decision,
            )
        )
    return outcomes
