"""Property tests over the OpenAPI document: no input gives a 500, every answer is documented.

Each operation is tried with generated requests, valid and not, against the WSGI app and a real
database, as a service account that owns an execution and a stale approval (see `_aim`). Two
runs: one fuzzes everything and checks that no answer is a 5xx and each is documented (status,
media type, schema) and that invalid requests are refused; the other sends only what the
document allows and checks that it is accepted, so the document is no looser than the server.
"""

import secrets
import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode

from approvals.gate_request import MAX_OWNER, THREAD_ID, parse_gate_request
from approvals.identity import identity_problem
from approvals.models import PausePacket, ServiceAccount
from approvals.services.gate import gate_check
from approvals.services.service_accounts import (
    TOKEN_PREFIX,
    service_account_create,
    token_hash,
)
from gatekeeper.wsgi import application
from tests.conftest import gate_body

HOST = "localhost"  # the Host header schemathesis's WSGI client sends
THREAD = "fuzz-thread"
PARENT = "fuzz-parent"
OWNER = "reviewers"  # the default approvers: the fixture's gate checks route to it
# Schemathesis makes some cases while collecting, before any fixture runs: the token is fixed
# here and given to the account the fixture creates.
TOKEN = TOKEN_PREFIX + secrets.token_urlsafe(32)
known: dict[str, str] = {}  # the approval the current test's account owns; set by the fixture


def _schema():
    with override_settings(ALLOWED_HOSTS=[HOST]):
        return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


# Anything at all, valid or not, NUL characters included.
fuzzed = _schema()
# Only what the document allows. JSON Schema cannot say of free-form values (`args`, `value`,
# `detail`) that their strings hold no NUL character (DESIGN section 6), so none are generated.
documented = _schema()
documented.config.generation.update(modes=[GenerationMode.POSITIVE], allow_x00=False)

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    # One account and one execution serve every example of an operation.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _aim(case) -> None:
    """Point a generated case at what the account has, leaving whatever makes it invalid.

    - A well-formed approval id or thread id names the account's own, so answers other than
      404 are checked too; malformed ones go through and must answer 404. (Well-formed unknown
      ids are tried by the hand-written tests.)
    - A gate check's well-formed idempotency key and thread id are made unique and its parent
      names the account's parent execution: otherwise most would only meet 409
      (idempotency_conflict, or invalid_state for another workflow), or 400 for an unknown
      parent, and never reach what makes an execution.
    - A well-formed owner (gate check, dry run or owner change) names a group that exists,
      which the document cannot say; malformed ones go through and must answer 400.
    - A long-poll sleeps for as long as it is asked: only `wait=1` is kept, longer ones become
      0. The long-poll itself is tested in test_api_approvals; here its answer is what matters.
    """
    params = dict(case.path_parameters or {})
    if _is_uuid(params.get("approval_id")):
        params["approval_id"] = known["approval_id"]
    if _is_thread_id(params.get("thread_id")):
        params["thread_id"] = THREAD
    if params != (case.path_parameters or {}):
        case.path_parameters = params
    wait = (case.query or {}).get("wait")
    if str(wait).isdigit() and 1 < int(wait) <= 60:
        case.query = {**case.query, "wait": 0}
    if case.operation.path.endswith("/gate") and isinstance(case.body, dict):
        body = dict(case.body)
        key = body.get("idempotency_key")
        if isinstance(key, str) and 1 <= len(key) <= 200:
            body["idempotency_key"] = uuid.uuid4().hex
        execution = body.get("execution")
        if isinstance(execution, dict):
            execution = dict(execution)
            if _is_thread_id(execution.get("thread_id")):
                execution["thread_id"] = f"t-{uuid.uuid4().hex}"
            if _is_thread_id(execution.get("parent_thread_id")):
                execution["parent_thread_id"] = PARENT
            if _is_owner(execution.get("owner")):
                execution["owner"] = OWNER
            body["execution"] = execution
        case.body = body
    if case.operation.path.endswith("/dry-run") and isinstance(case.body, dict):
        checks = case.body.get("checks")
        if isinstance(checks, list):
            case.body = {**case.body, "checks": [_known_owner(check) for check in checks]}
    owner_change = case.operation.path.endswith("/owner") and isinstance(case.body, dict)
    if owner_change and _is_owner(case.body.get("owner")):
        case.body = {**case.body, "owner": OWNER}


def _known_owner(check):
    """A dry-run check whose well-formed owner names the group that exists."""
    execution = check.get("execution") if isinstance(check, dict) else None
    if not (isinstance(execution, dict) and _is_owner(execution.get("owner"))):
        return check
    return {**check, "execution": {**execution, "owner": OWNER}}


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _is_owner(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_OWNER and not identity_problem(value)


def _is_thread_id(value) -> bool:
    return isinstance(value, str) and THREAD_ID.fullmatch(value) is not None


class _Bearer:
    """The fuzzer's token; left off where schemathesis tries a missing or bad one."""

    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


for schema in (fuzzed, documented):
    schema.auth(refresh_interval=None)(_Bearer)


@pytest.fixture
def account(settings):
    """A service account with a parent execution and an execution waiting on a stale approval."""
    settings.ALLOWED_HOSTS = [HOST]
    account, _ = service_account_create(name="fuzzer")
    ServiceAccount.objects.filter(id=account.id).update(
        token_prefix=TOKEN[:10], token_hash=token_hash(TOKEN)
    )
    for thread in (PARENT, THREAD):
        body = gate_body(execution__thread_id=thread, step__index=0)
        answer = gate_check(service_account=account, request=parse_gate_request(body), body=body)
    known["approval_id"] = answer["approval"]["id"]
    PausePacket.objects.filter(id=known["approval_id"]).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
@fuzzed.parametrize()
@EXAMPLES
def test_no_input_gives_a_500_and_every_answer_is_documented(case, account):
    _aim(case)
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@pytest.mark.django_db(transaction=True)
@documented.parametrize()
@EXAMPLES
def test_every_documented_request_is_accepted(case, account):
    _aim(case)
    case.call_and_validate()
