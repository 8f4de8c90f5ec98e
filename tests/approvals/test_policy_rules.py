"""Policy matching: globs, risk, labels, every condition op, priority and the side-effect rule."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.policy_rules import (
    GateFacts,
    Rule,
    condition_holds,
    evaluate,
    mismatches,
    resolve_path,
)

FACTS = GateFacts(
    workflow="hr-onboarding",
    tool="iam.grant",
    args={
        "user": "new.hire",
        "amount": 12000,
        "tags": ["vip", "eu"],
        "meta": {"region": "eu-west"},
        "flag": True,
        "items": [{"sku": "a1"}],
    },
    risk_score=0.7,
    risk_labels=("privilege",),
)


def rule(name="r", priority=10, effect="require_approval", **match):
    return Rule(name=name, priority=priority, effect=effect, match=match)


@pytest.mark.parametrize(
    ("match", "holds"),
    [
        ({}, True),
        ({"workflow": "hr-*"}, True),
        ({"workflow": "payments"}, False),
        ({"tool": "iam.*"}, True),
        ({"tool": "IAM.*"}, False),  # globs are case-sensitive
        ({"tool": "iam.gran[tx]"}, True),
        ({"min_risk": 0.5}, True),
        ({"min_risk": 0.7}, True),
        ({"min_risk": 0.71}, False),
        ({"labels_any": ["finance", "privilege"]}, True),
        ({"labels_any": ["finance"]}, False),
    ],
)
def test_match_keys(match, holds):
    assert (mismatches(match, FACTS) == []) is holds


def test_min_risk_does_not_hold_when_the_request_gives_no_score():
    assert mismatches({"min_risk": 0.0}, GateFacts(workflow="w", tool="t", args={}))


@pytest.mark.parametrize(
    ("path", "op", "value", "holds"),
    [
        ("amount", "eq", 12000, True),
        ("amount", "eq", 12000.0, True),
        ("flag", "eq", 1, False),  # JSON true is not 1
        ("amount", "ne", 5, True),
        ("missing", "ne", 5, False),
        ("amount", "gt", 10000, True),
        ("amount", "gt", 12000, False),
        ("amount", "gte", 12000, True),
        ("amount", "lt", 12001, True),
        ("amount", "lte", 11999, False),
        ("user", "gt", 1, False),  # a type mismatch never holds
        ("flag", "gt", 0, False),
        ("user", "in", ["new.hire", "x"], True),
        ("user", "in", ["x"], False),
        ("tags", "contains", "vip", True),
        ("tags", "contains", "us", False),
        ("user", "contains", "hire", True),
        ("meta", "contains", "region", True),
        ("meta.region", "glob", "eu-*", True),
        ("meta.region", "glob", "us-*", False),
        ("items.0.sku", "eq", "a1", True),
        ("items.5.sku", "exists", True, False),
        ("meta.region", "exists", True, True),
        ("meta.city", "exists", False, True),
        ("missing", "gt", 0, False),
    ],
)
def test_condition_ops(path, op, value, holds):
    assert condition_holds(resolve_path(FACTS.args, path), op, value) is holds


def test_first_enabled_rule_by_priority_decides():
    rules = [
        rule("late", priority=50, effect="allow"),
        rule("disabled", priority=1, effect="block").__class__(
            name="disabled", priority=1, effect="block", enabled=False
        ),
        rule("early", priority=10, effect="require_approval", tool="iam.*"),
    ]
    verdict = evaluate(rules, FACTS, default_decision="block")
    assert verdict.decision == "require_approval"
    assert verdict.rule.name == "early"
    assert verdict.trace[0] == "disabled: disabled"
    assert verdict.trace[1].startswith("early: matches")


def test_no_match_falls_back_to_the_default_decision():
    verdict = evaluate(
        [rule(tool="db.*", effect="allow")], FACTS, default_decision="require_approval"
    )
    assert verdict.decision == "require_approval"
    assert verdict.rule is None
    assert "no policy matched" in verdict.reason
    assert "tool 'iam.grant' is not 'db.*'" in verdict.trace[0]


@pytest.mark.parametrize("side_effect", ["landed", "indeterminate"])
@pytest.mark.parametrize("effect", ["allow", "block", "require_approval"])
def test_an_unsettled_side_effect_always_goes_to_a_human(side_effect, effect):
    facts = GateFacts(workflow="w", tool="t", args={}, side_effect=side_effect)
    verdict = evaluate([rule(effect=effect)], facts, default_decision="allow")
    assert verdict.decision == "require_approval"
    assert side_effect in verdict.reason


@given(
    st.sampled_from(["allow", "block", "require_approval"]),
    st.sampled_from(["not_started", "landed", "indeterminate"]),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
)
def test_allow_is_never_given_for_a_write_that_may_have_happened(effect, side_effect, args):
    facts = GateFacts(workflow="w", tool="t", args=args, side_effect=side_effect)
    verdict = evaluate([rule(effect=effect)], facts, default_decision=effect)
    if side_effect != "not_started":
        assert verdict.decision != "allow"
