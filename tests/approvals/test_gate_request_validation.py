"""Every field of a gate request is validated, and every problem names its field."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.errors import ValidationFailed
from approvals.gate_request import MAX_DEPTH, _clean, _problems, json_problems, parse_gate_request
from tests.conftest import gate_body


def problems(body) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as raised:
        parse_gate_request(body)
    return {e["field"]: e["message"] for e in raised.value.details["errors"]}


def test_a_valid_request_parses_into_typed_fields():
    request = parse_gate_request(gate_body(idempotency_key="k1"))
    assert request.thread_id == "onboard-42"
    assert request.step_index == 3
    assert request.args == {"user": "new.hire", "role": "admin"}
    assert request.context[0].observed_at == "2026-11-22T09:00:00+00:00"
    assert request.risk_score == 0.7 and request.risk_labels == ("privilege",)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 201}, "idempotency_key"),
        ({"execution__thread_id": "has space"}, "execution.thread_id"),
        ({"execution__thread_id": "x" * 201}, "execution.thread_id"),
        ({"execution__workflow": None}, "execution.workflow"),
        ({"step__index": -1}, "step.index"),
        ({"step__index": 2**31}, "step.index"),
        ({"step__index": True}, "step.index"),
        ({"step__index": "3"}, "step.index"),
        ({"action__args": [1, 2]}, "action.args"),
        ({"action__side_effect": "maybe"}, "action.side_effect"),
        ({"action__tool": 5}, "action.tool"),
        ({"risk__score": 1.5}, "risk.score"),
        ({"risk__labels": "privilege"}, "risk.labels"),
        (
            {"context": [{"name": "x", "value": 1, "observed_at": "2026-11-22T09:00:00"}]},
            "context[0].observed_at",
        ),
        (
            {"context": [{"name": "x", "value": 1, "observed_at": "yesterday"}]},
            "context[0].observed_at",
        ),
        ({"context": [{"name": "x", "observed_at": "2026-11-22T09:00:00Z"}]}, "context[0].value"),
        ({"context": {"a": 1}}, "context"),
        ({"action__side_efect": "landed"}, "action.side_efect"),
    ],
)
def test_bad_fields_are_named(overrides, field):
    assert field in problems(gate_body(**overrides))


def test_every_problem_is_reported_at_once():
    found = problems(gate_body(execution__thread_id="bad id", step__index=-5, risk__score=9))
    assert {"execution.thread_id", "step.index", "risk.score"} <= set(found)


def test_a_body_that_is_not_an_object_is_refused():
    assert problems([1, 2, 3]) == {"body": "must be a JSON object"}


def test_nesting_deeper_than_32_levels_is_refused():
    deep = {}
    cursor = deep
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]
    found = problems(gate_body(action__args=deep))
    assert any("nested deeper than 32" in message for message in found.values())


def test_nul_characters_are_refused_in_values_and_keys():
    assert any("NUL" in m for m in problems(gate_body(step__name="a\x00b")).values())
    assert any("NUL" in m for m in problems(gate_body(action__args={"k\x00": 1})).values())


def test_rfc3339_times_with_offsets_and_long_fractions_are_accepted():
    request = parse_gate_request(
        gate_body(
            context=[
                {"name": "n", "value": None, "observed_at": "2026-11-22T10:00:00.123456789+01:00"}
            ]
        )
    )
    assert request.context[0].observed_at == "2026-11-22T10:00:00.123456+01:00"


def test_the_dry_run_form_may_leave_out_the_idempotency_key():
    body = gate_body()
    del body["idempotency_key"]
    assert parse_gate_request(body, require_key=False).idempotency_key == ""


def test_lone_surrogates_are_refused_before_they_reach_the_database():
    assert any("surrogate" in m for m in problems(gate_body(step__name="a\ud800")).values())
    assert any("surrogate" in m for m in problems(gate_body(action__args={"\udfff": 1})).values())


_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\ud800"]))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


def _nested(depth: int, leaf) -> object:
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


@settings(max_examples=300, deadline=None)
@given(_json)
def test_the_fast_clean_check_agrees_with_the_detailed_problems(value):
    assert _clean(value, 0) == (_problems(value, "body", 0) == [])


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
@pytest.mark.parametrize("leaf", [1, {}, [], "x\x00"], ids=["number", "dict", "list", "nul"])
def test_the_fast_clean_check_agrees_at_the_depth_limit(depth, leaf):
    value = _nested(depth, leaf)
    assert _clean(value, 0) == (_problems(value, "body", 0) == [])
    assert json_problems(value) == _problems(value, "body", 0)
