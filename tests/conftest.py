import asyncio
import copy
import itertools
import os

import pytest
from django.contrib.auth.models import Group, User
from django.db.backends.postgresql.operations import DatabaseOperations

from approvals.gate_request import parse_gate_request
from approvals.models import ServiceAccount
from approvals.services.gate import gate_check
from approvals.services.service_accounts import service_account_create

# Every process a test starts (manage.py, Celery, gunicorn) inherits this: a developer's own
# .data/local.env must not reach them (gatekeeper.local_env). Tests of that file unset it.
os.environ["GATEKEEPER_LOCAL_ENV"] = "false"


# Harnesses made once per process and shared by their tests (a Prefect server, Temporal's dev
# server, the agent's virtualenv, migrated private databases): under pytest-xdist
# (`--dist loadgroup`, as `manage.py test` runs the suite) each one's tests go to one worker,
# so each harness still starts once per run.
SHARED_HARNESSES = (
    "prefect_api",
    "temporal_server",
    "agent_python",
    "role_database",
    "gatekeeper_on_slow_wal",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's hook reads the groups
def pytest_collection_modifyitems(config, items):
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    for item in items:
        harness = next((name for name in SHARED_HARNESSES if name in item.fixturenames), None)
        if harness is not None:
            item.add_marker(pytest.mark.xdist_group(harness))


@pytest.fixture(scope="session", autouse=True)
def _flush_past_append_only_audit():
    """Transactional tests end with a TRUNCATE of every table, which the audit trigger refuses.

    Only the test harness's flush switches the trigger off, and back on in the same
    transaction; the product never does.
    """
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if "audit_auditevent" not in tables:
            return statements
        return [
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
            *statements,
            "ALTER TABLE audit_auditevent ENABLE TRIGGER USER",
        ]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture(scope="module", autouse=True)
def _no_event_loop_left_running():
    """A module that leaves an event loop marked running in the main thread breaks every later
    test of its process that calls asyncio.run() or Playwright's sync API (the workers of
    `manage.py test` run many files each): name the module that did it, and clear the mark.
    (Within a browser module the mark is Playwright's own, until its fixture closes.)"""
    yield
    if asyncio.events._get_running_loop() is not None:
        asyncio.events._set_running_loop(None)
        pytest.fail("this test left an asyncio event loop running in the main thread")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, *groups: str, **extra) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "pw-" + username, **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def alice(db):
    """A reviewer in the default approvers group."""
    return _user("alice", "reviewers")


@pytest.fixture
def bob(db):
    """A second reviewer in the default approvers group."""
    return _user("bob", "reviewers")


@pytest.fixture
def charlie(db):
    """An outsider: a user with no role."""
    return _user("charlie")


@pytest.fixture
def make_user(db):
    return _user


@pytest.fixture
def agent(db) -> ServiceAccount:
    account, _token = service_account_create(name="agent")
    return account


_keys = itertools.count()


def gate_body(**overrides) -> dict:
    """A valid gate request; keyword overrides replace top-level or dotted keys."""
    body = {
        "idempotency_key": f"key-{next(_keys)}",
        "execution": {"thread_id": "onboard-42", "workflow": "hr-onboarding"},
        "step": {"index": 3, "name": "set_privileges"},
        "action": {
            "tool": "iam.grant",
            "args": {"user": "new.hire", "role": "admin"},
            "side_effect": "not_started",
        },
        "context": [
            {"name": "employee_record", "value": {"id": 7}, "observed_at": "2026-11-22T09:00:00Z"}
        ],
        "risk": {"score": 0.7, "labels": ["privilege"]},
    }
    for dotted, value in overrides.items():
        target = body
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return body


@pytest.fixture
def gate(agent):
    """Run a gate check for the agent service account; returns the API response."""

    def run(account=None, **overrides):
        body = gate_body(**overrides)
        return gate_check(
            service_account=account or agent,
            request=parse_gate_request(copy.deepcopy(body)),
            body=body,
        )

    return run


def groups_named_by(*documents) -> None:
    """Create the groups policy documents route to: a policy may name only existing groups."""
    from django.contrib.auth.models import Group

    for document in documents:
        for key in ("approvers", "escalate_to"):
            if document.get(key):
                Group.objects.get_or_create(name=document[key])


@pytest.fixture
def policy(db):
    """Save a policy through the service, its groups created first; keyword arguments are its
    document."""
    from approvals.services.policies import policy_save

    def make(name="p", effect="require_approval", **document):
        document = {"name": name, "effect": effect, **document}
        groups_named_by(document)
        saved, _ = policy_save(document=document, actor="test")
        return saved

    return make


@pytest.fixture
def packet_for(gate):
    """Gate a step that needs approval and return its PausePacket."""
    from approvals.models import PausePacket

    def make(**overrides):
        response = gate(**overrides)
        assert response["decision"] == "require_approval", response
        return PausePacket.objects.select_related("execution").get(id=response["approval"]["id"])

    return make
