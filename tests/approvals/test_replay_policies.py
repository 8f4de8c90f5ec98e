"""Replay: the recorded gate checks decided again under a policy file, with nothing written."""

import copy
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.gate_request import parse_gate_request
from approvals.models import Execution, GateCheck, PausePacket, Policy, PolicyVersion
from approvals.policy_documents import policy_problems
from approvals.services.policies import (
    facts_verdict,
    policy_verdict,
    request_facts,
    rule_of_document,
)
from approvals.services.replay import replay, replayed_checks
from audit.models import AuditEvent
from tests.conftest import gate_body

NO_IAM = {"name": "no-iam", "priority": 10, "match": {"tool": "iam.grant"}, "effect": "block"}
READS = {"name": "reads", "priority": 50, "match": {"tool": "*.read"}, "effect": "allow"}


def _replay(tmp_path, documents, *args) -> str:
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(documents), encoding="utf-8")
    out = StringIO()
    call_command("replay_policies", str(path), *args, stdout=out)
    return out.getvalue()


def _counts() -> tuple:
    models = (Policy, PolicyVersion, GateCheck, Execution, PausePacket, AuditEvent)
    return tuple(model.objects.count() for model in models)


@pytest.fixture
def history(gate, policy, alice):
    """Four recorded checks: two iam.grant asked for approval, two iam.read allowed."""
    policy("reads", effect="allow", priority=50, match={"tool": "*.read"})
    for step in range(2):
        gate(step__index=step)
    for step in range(2, 4):
        gate(step__index=step, action__tool="iam.read")
    assert sorted(GateCheck.objects.values_list("decision", flat=True)) == [
        "allow", "allow", "require_approval", "require_approval"
    ]  # fmt: skip


def test_replay_counts_the_changed_answers_by_kind_with_examples(history, tmp_path):
    out = _replay(tmp_path, [NO_IAM, {**READS, "effect": "require_approval"}])
    lines = out.splitlines()
    assert lines[0].startswith("replayed 4 gate checks recorded since ")
    assert lines[0].endswith(": 4 would get another answer")
    assert "  allow -> require_approval: 2" in lines
    assert "  require_approval -> block: 2" in lines
    grant = [line for line in lines if "tool iam.grant" in line]
    assert len(grant) == 2 and all("policy no-iam v1 (priority 10): block" in x for x in grant)
    assert lines[-1] == "nothing was written"


def test_the_file_applies_over_the_stored_policies_as_an_import_would(history, tmp_path):
    out = _replay(tmp_path, [NO_IAM])  # "reads" stays as stored
    assert ": 2 would get another answer" in out.splitlines()[0]
    assert "  require_approval -> block: 2" in out
    # The stored version of a policy the file changes is the one replaced.
    out = _replay(tmp_path, [{**READS, "priority": 1}])
    assert ": 0 would get another answer" in out and "allow ->" not in out


def test_a_shadow_policy_in_the_file_does_not_decide(history, tmp_path):
    out = _replay(tmp_path, [{**NO_IAM, "mode": "shadow"}])
    assert ": 0 would get another answer" in out


def test_replay_writes_nothing(history, tmp_path):
    before = _counts()
    with CaptureQueriesContext(connection) as captured:
        _replay(tmp_path, [NO_IAM, {**READS, "effect": "block"}])
    assert _counts() == before
    statements = [q["sql"].lstrip().split()[0].upper() for q in captured.captured_queries]
    assert set(statements) <= {"SELECT", "SAVEPOINT", "DECLARE", "RELEASE", "SET"}, statements


@pytest.mark.django_db(transaction=True)
def test_on_its_own_transaction_the_database_refuses_writes(agent, gate, policy):
    gate()
    for _check, _verdict in replayed_checks([], since=timezone.now() - timedelta(days=1)):
        with (
            pytest.raises(Exception, match="read-only transaction"),  # noqa: PT011
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM approvals_policy")
        break


def test_replay_reads_in_a_bounded_number_of_queries(history, tmp_path, gate):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _replay(tmp_path, [NO_IAM])
        return len(captured.captured_queries)

    few = queries()
    for step in range(10, 30):
        gate(step__index=step)
    assert queries() == few


def test_since_leaves_out_older_checks(history, tmp_path):
    GateCheck.objects.filter(tool="iam.grant").update(
        created_at=timezone.now() - timedelta(days=10)
    )
    assert ": 0 would get another answer" in _replay(tmp_path, [NO_IAM], "--since", "7")
    assert "replayed 2 gate checks" in _replay(tmp_path, [NO_IAM], "--since", "7")
    assert ": 2 would get another answer" in _replay(tmp_path, [NO_IAM], "--since", "11")


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ({"name": "x"}, "a policy file is a JSON list of policies"),
        ([{**NO_IAM, "mode": "maybe"}], "entry no-iam, field mode: must be one of enforce"),
        ([{**NO_IAM, "match": {"tool": "iam.["}}], "field match.tool: has an unclosed ["),
    ],
)
def test_a_bad_file_is_refused_and_nothing_replayed(db, tmp_path, documents, message):
    with pytest.raises(CommandError) as error:
        _replay(tmp_path, documents)
    assert "was refused; nothing was replayed" in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize("since", ["0", "-1", "soon", "4000"])
def test_a_bad_since_is_refused(db, tmp_path, since):
    with pytest.raises(CommandError, match="--since"):
        _replay(tmp_path, [NO_IAM], "--since", since)


# The property: for any policies and any recorded checks, what replay answers for a check is
# what the gate's evaluation answers for the request that check recorded.

_WORKFLOWS = ["hr-onboarding", "payments", "hr-x"]
_TOOLS = ["iam.grant", "iam.read", "mail.send", "crm.update"]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 20_000),
    st.floats(-1, 20_000, allow_nan=False),
    st.sampled_from(["admin", "viewer", "a*", ""]),
)
_args = st.dictionaries(
    st.sampled_from(["amount", "role", "tags", "user"]),
    st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.just("role"), _scalars)),
    max_size=4,
)
_condition = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["amount", "role", "tags", "user.role", "tags.0"]),
        "op": st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "glob"]),
        "value": st.one_of(_scalars, st.lists(_scalars, max_size=3)),
    }
)
_match = st.fixed_dictionaries(
    {},
    optional={
        "workflow": st.sampled_from(["hr-*", "payments", "*", "hr-[ox]*"]),
        "tool": st.sampled_from(["iam.*", "*.read", "mail.send", "*"]),
        "min_risk": st.floats(0, 1),
        "labels_any": st.lists(st.sampled_from(["privilege", "money"]), min_size=1, max_size=2),
        "conditions": st.lists(_condition, max_size=2),
    },
)
_policy = st.fixed_dictionaries(
    {
        "priority": st.integers(0, 5),
        "enabled": st.booleans(),
        "mode": st.sampled_from(["enforce", "enforce", "shadow"]),
        "match": _match,
        "effect": st.sampled_from(["allow", "block", "require_approval"]),
    }
)
_check = st.fixed_dictionaries(
    {
        "workflow": st.sampled_from(_WORKFLOWS),
        "tool": st.sampled_from(_TOOLS),
        "args": _args,
        "side_effect": st.sampled_from(["not_started", "not_started", "landed", "indeterminate"]),
        "risk": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"score": st.one_of(st.none(), st.floats(0, 1))},
                optional={"labels": st.lists(st.sampled_from(["privilege", "money", "pii"]))},
            ),
        ),
    }
)


@pytest.fixture
def executions(agent):
    return {
        workflow: Execution.objects.create(
            service_account=agent, thread_id=f"t-{workflow}", workflow=workflow
        )
        for workflow in _WORKFLOWS
    }


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(policies=st.lists(_policy, max_size=5), checks=st.lists(_check, min_size=1, max_size=8))
def test_replay_answers_what_the_gate_evaluation_answers(agent, executions, policies, checks):
    named = [{"name": f"p{n}", **policy} for n, policy in enumerate(policies)]
    documents = [document for document in named if not policy_problems(document)]
    rules = [rule_of_document(document) for document in documents]
    with transaction.atomic():
        bodies = {}
        for n, check in enumerate(checks):
            body = gate_body(
                idempotency_key=f"prop-{n}",
                execution__workflow=check["workflow"],
                execution__thread_id=f"t-{check['workflow']}",
                step__index=n,
                action__tool=check["tool"],
                action__args=check["args"],
                action__side_effect=check["side_effect"],
            )
            if check["risk"] is None:
                del body["risk"]
            else:
                body["risk"] = check["risk"]
            recorded = GateCheck.objects.create(
                service_account=agent,
                execution=executions[check["workflow"]],
                idempotency_key=body["idempotency_key"],
                request_hash="0" * 64,
                request=body,
                step_index=n,
                step_name="step",
                tool=check["tool"],
                side_effect=check["side_effect"],
                decision="allow",
                reason="recorded",
            )
            bodies[recorded.id] = body
        replayed = {
            check.id: verdict
            for check, verdict in replayed_checks(rules, since=timezone.now() - timedelta(1))
        }
        assert set(replayed) == set(bodies)
        for check_id, body in bodies.items():
            request = parse_gate_request(copy.deepcopy(body))
            # What the gate runs for this request: the same function, the same answer.
            fresh = facts_verdict(request_facts(request), rules)
            assert replayed[check_id] == fresh
            # The dry run's explained verdict decides the same.
            explained = policy_verdict(request, rules)
            assert (explained.decision, explained.rule, explained.reason) == (
                fresh.decision, fresh.rule, fresh.reason
            )  # fmt: skip
        report = replay(rules, days=1)
        changed = sum(fresh.decision != "allow" for fresh in replayed.values())
        assert (report.checks, report.changed) == (len(bodies), changed)
        transaction.set_rollback(True)
