"""Error answers become typed exceptions carrying the API's code, status and details."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from gatekeeper_client import (
    AlreadyDecided,
    Conflict,
    Expired,
    GatekeeperClient,
    GatekeeperError,
    IdempotencyConflict,
    InvalidState,
    NotFound,
    Unauthorized,
    ValidationError,
)

from approvals.models import PausePacket
from approvals.services.review import packet_approve
from tests.client.conftest import CONTEXT

GATE = ("onboard-42", "hr-onboarding", 2, "set_privileges", "iam.grant")


def test_a_wrong_token_is_unauthorized(live_server, db):
    client = GatekeeperClient(live_server.url, "gk_not-a-token")
    with pytest.raises(Unauthorized) as error:
        client.check(*GATE, {"user": "jdoe"})
    assert (error.value.status, error.value.code) == (401, "unauthorized")
    assert "gk_not-a-token" not in repr(client) + str(error.value)


def test_unknown_approvals_and_executions_are_not_found(gk):
    with pytest.raises(NotFound) as error:
        gk.wait(str(uuid.uuid4()), timeout=1)
    assert (error.value.status, error.value.code) == (404, "not_found")
    with pytest.raises(NotFound):
        gk.execution("never-gated")


def test_an_approval_of_another_service_account_is_not_found(gk, live_server):
    from approvals.services.service_accounts import service_account_create

    approval = gk.check(*GATE, {"user": "jdoe"}, context=CONTEXT).approval
    other = GatekeeperClient(live_server.url, service_account_create(name="other")[1])
    with pytest.raises(NotFound):
        other.approval(approval.id)


def test_a_bad_request_is_a_validation_error_naming_each_field(gk):
    with pytest.raises(ValidationError) as error:
        gk.check("bad id", "hr-onboarding", -1, "x", "iam.grant", {})
    assert error.value.status == 400
    fields = {e["field"] for e in error.value.details["errors"]}
    assert {"execution.thread_id", "step.index"} <= fields


def test_a_reused_key_with_another_body_is_an_idempotency_conflict(gk):
    first = gk.check(*GATE, {"user": "jdoe"}, idempotency_key="once")
    with pytest.raises(IdempotencyConflict) as error:
        gk.check(*GATE, {"user": "someone-else"}, idempotency_key="once")
    assert isinstance(error.value, Conflict) and error.value.status == 409
    assert error.value.details["check_id"] == first.check_id


def test_refreshing_a_fresh_or_decided_approval_is_a_conflict(gk, alice):
    approval = gk.check(*GATE, {"user": "jdoe"}, context=CONTEXT).approval
    with pytest.raises(InvalidState):
        gk.refresh(approval.id, CONTEXT)
    packet_approve(packet_id=approval.id, user=alice)
    with pytest.raises(AlreadyDecided) as error:
        gk.refresh(approval.id, CONTEXT)
    assert error.value.code == "already_decided"


def test_refreshing_an_expired_approval_is_expired(gk):
    approval = gk.check(*GATE, {"user": "jdoe"}, context=CONTEXT).approval
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=approval.id).update(
        created_at=past - timedelta(hours=2), fresh_until=past, expires_at=past
    )
    with pytest.raises(Expired) as error:
        gk.refresh(approval.id, CONTEXT)
    assert (error.value.status, error.value.code) == (410, "expired")
    assert gk.approval(approval.id).status == "expired"


def test_every_api_error_is_a_gatekeeper_error(gk):
    with pytest.raises(GatekeeperError):
        gk.execution("never-gated")
