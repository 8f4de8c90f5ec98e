"""An owner names an existing group, user or service account; the API never creates a group.

The red team sent owners like `<svg onload=...>` and `@SUM(1)` and found them as groups in the
admin. Now an unknown owner is 400 `validation_error` naming the field, and nothing is written.
"""

import pytest
from django.contrib.auth.models import Group

from approvals.models import Execution, GateCheck, PausePacket
from audit.models import AuditEvent
from tests.api.conftest import error_of
from tests.conftest import gate_body

HOSTILE = ["<svg onload=alert(1)>", "@SUM(1)", "it-approvers ", "user:ghost", "service:ghost"]


def _written() -> tuple:
    return (
        Execution.objects.count(),
        GateCheck.objects.count(),
        PausePacket.objects.count(),
        AuditEvent.objects.count(),
        sorted(Group.objects.values_list("name", flat=True)),
    )


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [e["field"] for e in error["details"]["errors"]] == [field]


@pytest.fixture
def known_owners(make_user, api_account):
    make_user("ida", "it-approvers")
    return ["it-approvers", "user:ida", f"service:{api_account[0].name}"]


@pytest.mark.parametrize("owner", HOSTILE)
def test_a_gate_check_naming_an_unknown_owner_writes_nothing(api, known_owners, owner):
    before = _written()
    _refused(api.post("/gate", gate_body(execution__owner=owner)), "execution.owner")
    assert _written() == before
    assert not Group.objects.filter(name=owner).exists()


@pytest.mark.parametrize("owner", HOSTILE)
def test_an_unknown_owner_is_refused_for_an_execution_that_exists_too(api, known_owners, owner):
    api.post("/gate", gate_body())
    before = _written()
    _refused(api.post("/gate", gate_body(execution__owner=owner)), "execution.owner")
    assert _written() == before


def test_existing_groups_users_and_service_accounts_may_own(api, known_owners):
    for position, owner in enumerate(known_owners):
        body = gate_body(execution__thread_id=f"t-{position}", execution__owner=owner)
        answer = api.post("/gate", body)
        assert answer.status_code == 200, answer.content
        assert answer.json()["approval"]["execution"]["owner"] == owner


@pytest.mark.parametrize("owner", HOSTILE)
def test_an_owner_change_to_an_unknown_owner_changes_nothing(api, known_owners, owner):
    approval = api.post("/gate", gate_body(execution__owner="it-approvers")).json()["approval"]
    before = _written()
    _refused(api.post("/executions/onboard-42/owner", {"owner": owner}), "owner")
    assert _written() == before
    assert Execution.objects.get().owner == "it-approvers"
    assert api.get(f"/approvals/{approval['id']}").json()["status"] == "pending"


def test_an_owner_change_to_an_existing_owner_is_accepted(api, known_owners):
    api.post("/gate", gate_body())
    answer = api.post("/executions/onboard-42/owner", {"owner": "user:ida"})
    assert answer.status_code == 200 and answer.json()["owner"] == "user:ida"


@pytest.mark.parametrize("field", ["owner", "on_behalf_of"])
@pytest.mark.parametrize("name", ["alice\u200b", "ali\u202ece", "\ufeffalice", "alice\u2028"])
def test_invisible_characters_in_identity_fields_are_refused(api, alice, field, name):
    before = _written()
    _refused(api.post("/gate", gate_body(**{f"execution__{field}": name})), f"execution.{field}")
    assert _written() == before


def test_an_owner_change_with_invisible_characters_is_refused(api, alice):
    api.post("/gate", gate_body())
    _refused(api.post("/executions/onboard-42/owner", {"owner": "reviewers\u200b"}), "owner")


def test_the_default_route_group_is_the_only_group_a_gate_check_may_make(api):
    """The operator names it (GATEKEEPER_DEFAULT_APPROVERS); a fresh install routes to it."""
    assert not Group.objects.exists()
    answer = api.post("/gate", gate_body())
    assert answer.json()["approval"]["execution"]["owner"] == "reviewers"
    assert list(Group.objects.values_list("name", flat=True)) == ["reviewers"]


def test_a_replayed_check_answers_as_before_even_if_its_owner_is_gone_since(api, known_owners):
    body = gate_body(execution__owner="it-approvers")
    first = api.post("/gate", body).json()
    Group.objects.filter(name="it-approvers").delete()
    assert api.post("/gate", body).json() == first
