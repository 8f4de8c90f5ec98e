"""A database restart cuts every connection a web node keeps open between requests.

Gatekeeper keeps connections for DATABASE_CONN_MAX_AGE seconds and, by default, does not spend
a round trip on every request to check them first (DATABASE_CONN_HEALTH_CHECKS, off): the
first request on a cut connection gets the API's retryable 503, never a wrong answer or a
half-written decision, and the node reconnects for the next one (gatekeeper_client retries
503). With health checks on, the node reconnects before the request instead.
"""

import pytest
from django.db import connection

from approvals.models import GateCheck
from approvals.services.service_accounts import service_account_create
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)


# The node's connections carry this name (libpq's PGAPPNAME), so the test cuts only them: any
# other session of this test process's database (another thread's, another context's) is not
# the node's to lose, and would break whichever later test uses it.
NODE_APPLICATION = "gk-test-restarted-node"


def _cut_the_nodes_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [NODE_APPLICATION],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("health_checks", ["false", "true"])
def test_a_cut_connection_costs_at_most_one_retryable_503_and_no_decision(
    start_web_node, health_checks
):
    _, token = service_account_create(name="agent")
    # One thread: every request uses the one connection the node keeps.
    node = start_web_node(
        "web",
        threads=1,
        DATABASE_CONN_MAX_AGE="60",
        DATABASE_CONN_HEALTH_CHECKS=health_checks,
        PGAPPNAME=NODE_APPLICATION,
    )
    assert node.api("POST", "/api/v1/gate", token, gate_body(step__index=1))[0] == 200
    assert _cut_the_nodes_connections() >= 1

    body = gate_body(step__index=2)
    status, answer = node.api("POST", "/api/v1/gate", token, body)
    if health_checks == "true":
        assert status == 200
    else:
        assert (status, answer["error"]["code"]) == (503, "unavailable")
        assert not GateCheck.objects.filter(idempotency_key=body["idempotency_key"]).exists()
        # The client's retry, on a new connection.
        status, answer = node.api("POST", "/api/v1/gate", token, body)
        assert status == 200
    assert answer["decision"] == "require_approval"
    assert GateCheck.objects.filter(idempotency_key=body["idempotency_key"]).count() == 1
