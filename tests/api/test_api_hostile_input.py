"""Odd and hostile requests each get a clear JSON error, never a 500 (DESIGN section 6).

Kept deterministic here what the schemathesis run (test_schemathesis.py) found or might not
generate often: odd paths, query strings, media types and bodies.
"""

import json

import pytest

from tests.api.conftest import error_of
from tests.conftest import gate_body

APPROVAL = "7b0c1b8e-59b4-4d8e-9a5e-1d1c1d1c1d1c"


def _expect(response, status, code):
    assert response.status_code == status, response.content
    assert error_of(response)["code"] == code


@pytest.fixture
def gated(api):
    """An execution `onboard-42` with step 3 waiting for approval."""
    return api.post("/gate", gate_body()).json()["approval"]


@pytest.mark.parametrize(
    "path",
    [
        "/executions/%ff%fe",  # not UTF-8
        "/executions/%ed%a0%80",  # a UTF-8-encoded lone surrogate
        "/executions/a%00b",
        "/executions/%C3%A9t%C3%A9",  # unicode outside the thread_id alphabet
        "/executions/" + "a" * 201,
        "/approvals/%00",
        "/approvals/%ff",
        "/approvals/" + APPROVAL.upper().replace("-", ""),  # a UUID, only not ours
        "/approvals/" + "9" * 5000,
    ],
)
def test_odd_ids_in_the_path_are_not_found(api, gated, path):
    _expect(api.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "index", ["-1", "2147483648", "9" * 400, "+1", "%201", "1.0", "1_0", "%D9%A1", "%00", "x"]
)
def test_step_indexes_other_than_0_to_2_31_minus_1_are_validation_errors(api, gated, index):
    response = api.post(f"/executions/onboard-42/steps/{index}/outcome", {"side_effect": "landed"})
    _expect(response, 400, "validation_error")


@pytest.mark.parametrize(
    "query", ["wait=99999999999999999999999", "wait=%00", "wait=", "wait=%EF%BC%91", "wiat=30"]
)
def test_odd_query_strings_are_validation_errors(api, gated, query):
    response = api.client.get(f"/api/v1/approvals/{gated['id']}?{query}", headers=api.headers)
    _expect(response, 400, "validation_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/gate"),
        ("post", f"/approvals/{APPROVAL}/refresh"),
        ("post", "/executions/onboard-42/steps/3/outcome"),
        ("post", "/executions/onboard-42/owner"),
        ("get", "/executions/onboard-42"),
        ("get", f"/approvals/{APPROVAL}"),
    ],
)
def test_unknown_query_parameters_are_refused(api, gated, method, path):
    call = getattr(api.client, method)
    response = call(f"/api/v1{path}?cache=1", headers=api.headers)
    error = error_of(response)
    assert response.status_code == 400 and error["code"] == "validation_error"
    assert error["details"]["errors"] == [
        {"field": "cache", "message": "is not a known query parameter"}
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json-patch+json",
        "application/jsonx",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "text/json",
        "*/*",
    ],
)
def test_media_types_other_than_json_are_415_without_reading_the_body(api, content_type):
    response = api.post("/gate", raw="--x\r\ngarbage", content_type=content_type)
    _expect(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=latin-1"],
)
def test_json_with_parameters_or_in_capitals_is_json(api, content_type):
    assert api.post("/gate", gate_body(), content_type=content_type).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" ",
        b'{"idempotency_key": "\xff"}',  # not UTF-8
        b'{"idempotency_key": "\\ud800"}',  # a lone surrogate
        b'{"\\udfff": 1}',
        b'{"idempotency_key": "a\\u0000b"}',
        b"\x00",
    ],
)
def test_bodies_that_are_not_clean_json_are_validation_errors(api, raw):
    # The test client leaves the media type off an empty body unless told twice.
    response = api.client.post(
        "/api/v1/gate",
        data=raw,
        content_type="application/json",
        headers=api.headers,
        CONTENT_TYPE="application/json",
    )
    _expect(response, 400, "validation_error")


def test_a_declared_length_over_the_limit_is_413_before_reading(api):
    response = api.post("/gate", gate_body(), CONTENT_LENGTH=str(10 * 1024 * 1024))
    _expect(response, 413, "payload_too_large")


def test_huge_and_odd_numbers_in_args_are_kept(api):
    args = {"big": 10**4000, "tiny": 5e-324, "large": 1.7e308, "negative_zero": -0.0}
    answer = api.post("/gate", raw=json.dumps(gate_body(action__args=args)))
    assert answer.status_code == 200, answer.content
    assert answer.json()["approval"]["action"]["args"]["big"] == 10**4000


def test_a_whole_number_written_with_a_fraction_is_that_number(api):
    approval = api.post("/gate", gate_body(step__index=4.0)).json()["approval"]
    assert approval["step"]["index"] == 4
    _expect(api.post("/gate", gate_body(step__index=4.5)), 400, "validation_error")
    _expect(api.post("/gate", gate_body(step__index=1e300)), 400, "validation_error")


@pytest.mark.parametrize("labels", [{}, "", 0, False, "privilege", [1]])
def test_risk_labels_must_be_a_list_of_strings(api, labels):
    _expect(api.post("/gate", gate_body(risk__labels=labels)), 400, "validation_error")


def test_null_optional_fields_count_as_absent(api, make_user):
    make_user("lee", "it-leads")
    body = gate_body(
        risk__labels=None, context=None, action__side_effect=None, execution__owner=None
    )
    answer = api.post("/gate", body)
    assert answer.status_code == 200, answer.content
    owner_change = api.post("/executions/onboard-42/owner", {"owner": "it-leads", "reason": None})
    assert owner_change.status_code == 200


@pytest.mark.parametrize(
    "observed_at",
    ["0000-01-01T00:00:00Z", "2026-11-22T23:59:60Z", "2026-02-30T00:00:00Z", "2026-11-22T09:00Z"],
)
def test_times_that_are_not_real_rfc_3339_times_are_validation_errors(api, observed_at):
    context = [{"name": "n", "value": 1, "observed_at": observed_at}]
    _expect(api.post("/gate", gate_body(context=context)), 400, "validation_error")


def test_refresh_needs_a_context_list_not_null(api, gated):
    response = api.post(f"/approvals/{gated['id']}/refresh", {"context": None})
    _expect(response, 400, "validation_error")


def test_an_owner_longer_than_a_group_name_is_a_validation_error(api, gated, make_user):
    make_user("gil", "g" * 150)
    long_owner = gate_body(execution__thread_id="long-owner", execution__owner="g" * 151)
    _expect(api.post("/gate", long_owner), 400, "validation_error")
    response = api.post("/executions/onboard-42/owner", {"owner": "g" * 151})
    _expect(response, 400, "validation_error")
    longest = gate_body(execution__thread_id="long-owner", execution__owner="g" * 150)
    assert api.post("/gate", longest).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer gk_\x00", "Bearer gk_" + "x" * 100_000, "Bearer  ", "Bearer gk_é", "\x00"],
)
def test_odd_authorization_headers_are_unauthorized(client, db, authorization):
    response = client.post(
        "/api/v1/gate",
        data=gate_body(),
        content_type="application/json",
        headers={"Authorization": authorization},
    )
    _expect(response, 401, "unauthorized")


@pytest.mark.parametrize("method", ["put", "patch", "delete", "options"])
def test_other_methods_are_405_with_allow(api, method):
    response = getattr(api.client, method)("/api/v1/gate", headers=api.headers)
    _expect(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
