"""POST /api/v1/gate: decisions, idempotency, and every kind of bad input as a JSON error."""

import json

import pytest

from approvals.models import GateCheck, PausePacket
from tests.api.conftest import error_of
from tests.conftest import gate_body


def test_an_unmatched_step_requires_approval_with_the_approval_in_the_answer(api):
    response = api.post("/gate", gate_body())
    assert response.status_code == 200
    answer = response.json()
    assert answer["decision"] == "require_approval" and answer["policy"] is None
    approval = answer["approval"]
    assert approval["status"] == "pending" and approval["approvals"] == 0
    assert approval["action"] == {
        "tool": "iam.grant",
        "args": {"user": "new.hire", "role": "admin"},
    }
    assert approval["execution"] == {"thread_id": "onboard-42", "owner": "reviewers"}
    assert approval["step"] == {"index": 3, "name": "set_privileges"}
    assert set(approval) == {
        "id",
        "status",
        "branch",
        "decision",
        "action",
        "edited",
        "comment",
        "decided_by",
        "decided_at",
        "fresh_until",
        "expires_at",
        "required_approvals",
        "approvals",
        "execution",
        "step",
        "superseded_by",
        "callback",
        "url",
    }
    assert approval["callback"] is None


def test_an_allow_policy_answers_allow(api, policy):
    policy("reads", effect="allow", match={"tool": "iam.*"})
    answer = api.post("/gate", gate_body()).json()
    assert answer["decision"] == "allow" and answer["approval"] is None
    assert answer["policy"] == {"name": "reads", "version": 1}


def test_the_same_key_and_body_replays_and_another_body_conflicts(api):
    body = gate_body(idempotency_key="once")
    first = api.post("/gate", body).json()
    assert api.post("/gate", body).json() == first
    conflict = api.post("/gate", gate_body(idempotency_key="once", step__index=9))
    assert conflict.status_code == 409
    assert error_of(conflict)["code"] == "idempotency_conflict"
    assert GateCheck.objects.count() == 1


def test_key_order_and_whitespace_do_not_make_a_different_body(api):
    body = gate_body(idempotency_key="canon")
    first = api.post("/gate", body).json()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    assert api.post("/gate", raw=reordered).json() == first


def test_another_workflow_for_an_execution_is_invalid_state(api):
    api.post("/gate", gate_body())
    response = api.post("/gate", gate_body(execution__workflow="payments", step__index=4))
    assert response.status_code == 409 and error_of(response)["code"] == "invalid_state"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{", "body"),
        ("[]", "body"),
        ('"text"', "body"),
        ("null", "body"),
        ('{"a": NaN}', "body"),
        ("1" * 5000, "body"),
    ],
)
def test_bodies_that_are_not_json_objects_are_validation_errors(api, raw, field):
    response = api.post("/gate", raw=raw)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"]["errors"][0]["field"] == field


def test_field_errors_name_every_field(api):
    response = api.post("/gate", gate_body(step__index=-1, execution__thread_id="bad id"))
    fields = {e["field"] for e in error_of(response)["details"]["errors"]}
    assert response.status_code == 400 and {"step.index", "execution.thread_id"} <= fields
    assert not GateCheck.objects.exists()


def test_deep_nesting_nul_characters_and_huge_numbers_are_refused(api):
    deep = "[" * 40 + "]" * 40
    body = json.dumps(gate_body()).replace('"args": {', f'"args": {{"deep": {deep}, ', 1)
    assert api.post("/gate", raw=body).status_code == 400
    assert api.post("/gate", gate_body(step__name="a\x00b")).status_code == 400
    huge = json.dumps(gate_body()).replace('"index": 3', '"index": 1e999')
    assert api.post("/gate", raw=huge).status_code == 400
    very_deep = "[" * 100000 + "]" * 100000
    assert api.post("/gate", raw=very_deep).status_code == 400


def test_a_body_over_the_limit_is_413(api, settings):
    settings.GATEKEEPER_MAX_REQUEST_BYTES = 2048
    response = api.post("/gate", gate_body(action__args={"blob": "x" * 4096}))
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_other_media_types_are_415(api, content_type):
    response = api.post("/gate", gate_body(), content_type=content_type)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_wrong_methods_and_unknown_paths_answer_in_json(api):
    wrong = api.get("/gate")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"
    missing = api.get("/nothing-here")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


def test_the_openapi_document_and_docs_are_served(api, client):
    document = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/gate" in document["paths"]
    gate = document["paths"]["/api/v1/gate"]["post"]
    assert gate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/GateIn")
    assert "GateIn" in document["components"]["schemas"]
    assert client.get("/api/v1/docs").status_code == 200


def test_the_openapi_document_describes_the_webhook_and_its_signed_id(client):
    document = client.get("/api/v1/openapi.json").json()
    hook = document["webhooks"]["approval"]["post"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    webhook_out = document["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert webhook_out["required"] == ["id", "event", "approval"]
    assert webhook_out["properties"]["approval"]["$ref"].endswith("/ApprovalOut")
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert headers == {"Gatekeeper-Event", "Gatekeeper-Delivery", "Gatekeeper-Signature"}
    assert "body whose id is not the Gatekeeper-Delivery header" in hook["description"]


def test_packets_made_through_the_api_hold_the_whole_pause_packet(api):
    approval = api.post("/gate", gate_body(execution__on_behalf_of="dana")).json()["approval"]
    packet = PausePacket.objects.get(id=approval["id"])
    assert packet.on_behalf_of == "dana" and packet.requested_by.name == "orchestrator"
