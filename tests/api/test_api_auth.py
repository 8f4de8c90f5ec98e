import pytest

from approvals.models import ServiceAccount
from tests.api.conftest import ApiClient, error_of
from tests.conftest import gate_body


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "bearer gk_wrong"])
def test_missing_or_wrong_tokens_are_unauthorized(client, db, header):
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/v1/gate", data=gate_body(), content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_revoked_account_is_unauthorized(api, api_account):
    ServiceAccount.objects.filter(id=api_account[0].id).update(is_active=False)
    assert api.post("/gate", gate_body()).status_code == 401


def test_a_valid_token_works_and_records_its_last_use(api, api_account):
    assert api.post("/gate", gate_body()).status_code == 200
    assert ServiceAccount.objects.get(id=api_account[0].id).last_used_at is not None


def test_every_endpoint_needs_a_token(client, db):
    anonymous = ApiClient(client, None)
    paths = [
        ("post", "/gate"),
        ("get", "/approvals/7b0c1b8e-59b4-4d8e-9a5e-1d1c1d1c1d1c"),
        ("post", "/approvals/7b0c1b8e-59b4-4d8e-9a5e-1d1c1d1c1d1c/refresh"),
        ("post", "/executions/t/steps/1/outcome"),
        ("post", "/executions/t/owner"),
        ("get", "/executions/t"),
    ]
    for method, path in paths:
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, (method, path)
