import json

import pytest

from approvals.services.service_accounts import service_account_create


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def post(self, path, body=None, *, raw=None, content_type="application/json", **extra):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            f"/api/v1{path}", data=data, content_type=content_type, headers=self.headers, **extra
        )

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)


@pytest.fixture
def api_account(db):
    return service_account_create(name="orchestrator")


@pytest.fixture
def api(client, api_account):
    return ApiClient(client, api_account[1])


@pytest.fixture
def other_api(client, db):
    return ApiClient(client, service_account_create(name="someone-else")[1])


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content
    return response.json()["error"]
