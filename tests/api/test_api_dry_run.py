"""POST /api/v1/gate/dry-run: the gate's answers for a list of checks, with nothing written."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.events import EventKind
from approvals.models import Execution, GateCheck, PausePacket
from audit.models import AuditEvent
from tests.api.conftest import error_of
from tests.conftest import gate_body

PATH = "/gate/dry-run"


def check(tool: str, **overrides) -> dict:
    """A gate body for `tool` with what a dry run may leave out left out."""
    body = gate_body(action__tool=tool, **overrides)
    for key in ("idempotency_key", "step"):
        if not any(name.startswith(key) for name in overrides):
            body.pop(key)
    if "execution__thread_id" not in overrides:
        body["execution"].pop("thread_id")
    return body


@pytest.fixture
def onboarding(policy):
    policy("lookups", effect="allow", priority=1, match={"tool": "hr.lookup"})
    policy("drops", effect="block", priority=2, match={"tool": "db.drop*"})
    policy("grants", priority=3, match={"workflow": "hr-*", "tool": "iam.*"})
    policy("off", effect="allow", priority=0, enabled=False, match={"tool": "iam.*"})


def nothing_written() -> bool:
    return not (
        Execution.objects.exists()
        or GateCheck.objects.exists()
        or PausePacket.objects.exists()
        or AuditEvent.objects.filter(kind=EventKind.GATE_CHECKED).exists()
    )


def test_each_check_gets_the_answer_the_gate_would_give_in_order(api, onboarding):
    checks = [check("iam.grant"), check("hr.lookup"), check("db.drop_table"), check("x.y")]
    response = api.post(PATH, {"checks": checks})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "results": [
            {
                "tool": "iam.grant",
                "decision": "require_approval",
                "reason": "policy grants v1 (priority 3): require_approval",
                "policy": {"name": "grants", "version": 1},
            },
            {
                "tool": "hr.lookup",
                "decision": "allow",
                "reason": "policy lookups v1 (priority 1): allow",
                "policy": {"name": "lookups", "version": 1},
            },
            {
                "tool": "db.drop_table",
                "decision": "block",
                "reason": "policy drops v1 (priority 2): block",
                "policy": {"name": "drops", "version": 1},
            },
            {
                "tool": "x.y",
                "decision": "require_approval",
                "reason": "no policy matched; default decision require_approval",
                "policy": None,
            },
        ]
    }
    assert nothing_written()
    # The gate itself agrees, check for check.
    for index, (dry, body) in enumerate(zip(response.json()["results"], checks, strict=True)):
        tool = body["action"]["tool"]
        gated = api.post("/gate", gate_body(action__tool=tool, step__index=index)).json()
        assert (gated["decision"], gated["policy"]) == (dry["decision"], dry["policy"])


def test_args_risk_and_side_effect_count_as_at_the_gate(api, policy):
    policy("big", priority=1, match={"conditions": [{"path": "amount", "op": "gt", "value": 10}]})
    policy("rest", effect="allow", priority=2)
    checks = [
        check("pay", action__args={"amount": 11}),
        check("pay", action__args={"amount": 9}),
        check("pay", action__args={"amount": 9}, action__side_effect="indeterminate"),
    ]
    results = api.post(PATH, {"checks": checks}).json()["results"]
    assert [r["decision"] for r in results] == ["require_approval", "allow", "require_approval"]
    assert results[2]["reason"].startswith("side effect is indeterminate")


def test_a_full_gate_body_is_accepted_and_its_key_claims_nothing(api, onboarding):
    body = gate_body(idempotency_key="later")
    assert api.post(PATH, {"checks": [body]}).json()["results"][0]["decision"] == (
        "require_approval"
    )
    assert nothing_written()
    # The key is still free: the real check with it is a new one, not a replay or a conflict.
    assert api.post("/gate", body).status_code == 200
    assert GateCheck.objects.get().idempotency_key == "later"


def test_a_dry_run_reads_the_policies_once_and_each_owner_once(api, onboarding, make_user):
    make_user("alice", "it-approvers")
    checks = [check(tool, execution__owner="it-approvers") for tool in ("a", "b", "c", "d")]
    api.post(PATH, {"checks": checks})  # the token's last use is stamped: a write of its own
    with CaptureQueriesContext(connection) as queries:
        assert api.post(PATH, {"checks": checks}).status_code == 200
    statements = [query["sql"] for query in queries]
    # The token, the owner (once for four checks), the policies.
    assert len(statements) == 3, statements
    assert not [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    with CaptureQueriesContext(connection) as queries:
        api.post(PATH, {"checks": [check(t) for t in "abcdefgh"]})
    assert len(queries) == 2  # no owner named: the token and the policies


def test_an_unknown_owner_is_refused_as_the_gate_refuses_it(api, onboarding):
    response = api.post(PATH, {"checks": [check("a"), check("b", execution__owner="nobody-group")]})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"]["errors"] == [
        {
            "field": "checks[1].execution.owner",
            "message": "names no existing group, user:<name> or service:<name>",
        }
    ]
    assert nothing_written()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "checks"),
        ({"checks": []}, "checks"),
        ({"checks": {"a": 1}}, "checks"),
        ({"checks": [check("a")] * 101}, "checks"),
        ({"checks": [check("a")], "extra": 1}, "extra"),
        ({"checks": [1]}, "checks[0].body"),
        ({"checks": [check("a"), check("")]}, "checks[1].action.tool"),
        ({"checks": [check("a", step__index=-1)]}, "checks[0].step.index"),
        ({"checks": [check("a", execution__thread_id="bad id")]}, "checks[0].execution.thread_id"),
        ({"checks": [check("a", risk__score=2)]}, "checks[0].risk.score"),
        ({"checks": [check("a", action__args=[1])]}, "checks[0].action.args"),
        ({"checks": [check("a", execution__owner="it\u200bops")]}, "checks[0].execution.owner"),
        ({"checks": [check("a", idempotency_key="k" * 201)]}, "checks[0].idempotency_key"),
    ],
)
def test_bad_input_is_a_json_validation_error_and_writes_nothing(api, onboarding, body, field):
    response = api.post(PATH, body)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in {item["field"] for item in error["details"]["errors"]}
    assert nothing_written()


def test_hostile_bodies_are_refused_with_json_errors(api, settings, onboarding):
    nested = '"args": {"d": ' + "[" * 40 + "]" * 40 + ", "
    deep = json.dumps({"checks": [check("a")]}).replace('"args": {', nested, 1)
    assert api.post(PATH, raw=deep).status_code == 400
    assert api.post(PATH, {"checks": [check("a\x00b")]}).status_code == 400
    assert api.post(PATH, raw="[" * 100000 + "]" * 100000).status_code == 400
    assert api.post(PATH, raw="{not json").status_code == 400
    assert api.post(PATH, {"checks": [check("a")]}, content_type="text/plain").status_code == 415
    settings.GATEKEEPER_MAX_REQUEST_BYTES = 2048
    big = api.post(PATH, {"checks": [check("a", action__args={"blob": "x" * 4096})]})
    assert big.status_code == 413 and error_of(big)["code"] == "payload_too_large"
    assert nothing_written()


def test_a_dry_run_needs_a_token_and_refuses_unknown_query_parameters(client, api, onboarding):
    anonymous = client.post(
        f"/api/v1{PATH}", {"checks": [check("a")]}, content_type="application/json"
    )
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "unauthorized"
    misspelt = api.post(f"{PATH}?verbose=1", {"checks": [check("a")]})
    assert misspelt.status_code == 400


def test_the_openapi_document_describes_the_dry_run(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/gate/dry-run"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/DryRunIn")
    schemas = document["components"]["schemas"]
    assert schemas["DryRunIn"]["properties"]["checks"]["maxItems"] == 100
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    result = schemas[answer.rsplit("/", 1)[1]]["properties"]["results"]["items"]["$ref"]
    assert set(schemas[result.rsplit("/", 1)[1]]["required"]) == {
        "tool",
        "decision",
        "reason",
        "policy",
    }
