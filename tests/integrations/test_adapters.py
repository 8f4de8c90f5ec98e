"""gatekeeper_client.adapters: a framework's call identity becomes the same step every run."""

import pytest
from gatekeeper_client.adapters import gate_tool_name, step_for


def test_a_call_is_indexed_by_its_place_among_the_runs_gated_calls():
    first = step_for("onboard-1", "call_a", [], "hr_lookup", "hr.lookup")
    second = step_for("onboard-1", "call_b", ["call_a"], "iam_grant", "iam.grant")
    assert (first.index, second.index) == (0, 1)
    assert second.idempotency_key == "onboard-1:1:call_b"
    assert (second.thread_id, second.name, second.tool) == ("onboard-1", "iam_grant", "iam.grant")


def test_a_rerun_of_the_same_call_is_the_same_step():
    # After a resume the framework's history already holds the call (and later ones may follow).
    before = step_for("onboard-1", "call_b", ["call_a"], "iam_grant", "iam.grant")
    rerun = step_for(
        "onboard-1", "call_b", ["call_a", "call_b", "call_a"], "iam_grant", "iam.grant"
    )
    assert rerun == before


def test_a_long_key_is_hashed_within_the_servers_bound_and_stays_distinct():
    one = step_for("t" * 200, "call_a", [], "x", "x").idempotency_key
    two = step_for("t" * 200, "call_b", [], "x", "x").idempotency_key
    assert len(one) <= 200 and one != two and one.startswith("0:")


@pytest.mark.parametrize(("thread_id", "call_id"), [("", "call_a"), ("onboard-1", "")])
def test_a_call_without_identity_is_refused(thread_id, call_id):
    with pytest.raises(ValueError, match="thread id|no id"):
        step_for(thread_id, call_id, [], "iam_grant", "iam.grant")


def test_tool_names_map_by_mapping_or_function_and_default_to_the_name():
    assert gate_tool_name(None, "iam_grant") == "iam_grant"
    assert gate_tool_name({"iam_grant": "iam.grant"}, "iam_grant") == "iam.grant"
    assert gate_tool_name({"iam_grant": "iam.grant"}, "hr_lookup") == "hr_lookup"
    assert gate_tool_name(lambda name: name.replace("_", ".", 1), "iam_grant") == "iam.grant"
