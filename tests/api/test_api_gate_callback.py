"""A gate check's `callback`: stored with the approval, echoed everywhere, never interpreted."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import GateCheck, OutboxMessage, PausePacket
from approvals.services.review import packet_approve
from tests.api.conftest import error_of
from tests.conftest import gate_body

CALLBACK = {"engine": "stepfunctions", "task_token": "AQB8AAAAKgAAAAMAAAAA" * 40}


def test_the_callback_is_echoed_by_the_answer_the_approval_and_its_refreshed_successor(api):
    answer = api.post("/gate", gate_body(callback=CALLBACK)).json()
    approval = answer["approval"]
    assert approval["callback"] == CALLBACK
    assert api.get(f"/approvals/{approval['id']}").json()["callback"] == CALLBACK

    PausePacket.objects.filter(id=approval["id"]).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    context = [{"name": "employee_record", "value": {}, "observed_at": "2026-11-22T10:00:00Z"}]
    fresh = api.post(f"/approvals/{approval['id']}/refresh", {"context": context}).json()
    assert fresh["id"] != approval["id"] and fresh["callback"] == CALLBACK


def test_the_webhook_of_a_decision_carries_the_callback(api, api_account, alice):
    account, _token = api_account
    account.callback_url = "http://127.0.0.1:9/hooks"
    account.save(update_fields=["callback_url"])
    approval = api.post("/gate", gate_body(callback=CALLBACK)).json()["approval"]

    packet_approve(packet_id=approval["id"], user=alice)

    webhook = OutboxMessage.objects.get(topic="approval.decided")
    assert json.loads(webhook.payload["body"])["approval"]["callback"] == CALLBACK


@pytest.mark.parametrize(
    ("callback", "message"),
    [
        ("arn:aws:states:token", "must be a JSON object"),
        (["stepfunctions"], "must be a JSON object"),
        ({"token": "x" * 4100}, "must be at most 4096 bytes of JSON, not 4112"),
    ],
)
def test_a_callback_that_is_not_a_small_object_is_refused_and_nothing_is_written(
    api, callback, message
):
    response = api.post("/gate", gate_body(callback=callback))
    assert response.status_code == 400
    error = error_of(response)
    assert error["details"]["errors"] == [{"field": "callback", "message": message}]
    assert not GateCheck.objects.exists() and not PausePacket.objects.exists()


def _stale(api) -> dict:
    approval = api.post("/gate", gate_body(callback=CALLBACK)).json()["approval"]
    PausePacket.objects.filter(id=approval["id"]).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    return approval


CONTEXT = [{"name": "employee_record", "value": {}, "observed_at": "2026-11-22T10:00:00Z"}]


def test_a_refresh_may_name_the_run_that_now_waits_in_a_new_callback(api):
    approval = _stale(api)
    now_waits = {"engine": "stepfunctions", "task_token": "the refresh state's token"}

    fresh = api.post(
        f"/approvals/{approval['id']}/refresh", {"context": CONTEXT, "callback": now_waits}
    ).json()

    assert fresh["callback"] == now_waits
    assert api.get(f"/approvals/{approval['id']}").json()["callback"] == CALLBACK


def test_a_refresh_with_a_callback_too_big_is_refused_and_the_approval_stays_stale(api):
    approval = _stale(api)

    response = api.post(
        f"/approvals/{approval['id']}/refresh",
        {"context": CONTEXT, "callback": {"token": "x" * 4100}},
    )

    assert response.status_code == 400
    assert error_of(response)["details"]["errors"] == [
        {"field": "callback", "message": "must be at most 4096 bytes of JSON, not 4112"}
    ]
    assert PausePacket.objects.get().status == "pending"
