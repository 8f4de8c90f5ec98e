"""Who reaches what: every page and endpoint that takes an object id, tried by everyone.

One packet, made by the service account "agent" for the default approvers group ("reviewers"),
in an execution owned by that group. Each row says what one person (or API caller) gets: only the
intended get through; the rest are told nothing exists (404), or are sent to log in. A second
test asks the same rows about an id that does not exist, and it must answer the same as a
forbidden one: nobody learns that an id exists by being refused it.

Outcomes: a status code; "login" (302 to /accounts/login/), "admin-login" (302 to the admin's
login, which sends on to the same page) or "admin-index" (302 to /admin/, Django's answer to a
staff user without the model permission on guardian's pages, and to a superuser asking for a
packet that does not exist). Django's admin answers 403 to staff without the model permission,
for existing and missing packets alike.
"""

import json
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from approvals.models import PausePacket
from approvals.services.service_accounts import (
    service_account_create,
    service_account_rotate_token,
)

PEOPLE = ("anonymous", "outsider", "other role", "authority", "auditor", "superuser")
CALLERS = ("right account", "other account", "no token", "bad token", "superuser session")
REFUSED = {"login", "admin-login", "admin-index", "401", "403", "404"}

PACKET = "/approvals/{packet}/"
EXECUTION = "/executions/{execution}/"
ADMIN_CHANGE = "/admin/approvals/pausepacket/{packet}/change/"
ADMIN_PERMISSIONS = "/admin/approvals/pausepacket/{packet}/permissions/"
API_APPROVAL = "/api/v1/approvals/{packet}"
API_REFRESH = "/api/v1/approvals/{packet}/refresh"
API_EXECUTION = "/api/v1/executions/{thread}"
API_OWNER = "/api/v1/executions/{thread}/owner"
API_OUTCOME = "/api/v1/executions/{thread}/steps/3/outcome"

ACTIONS = {
    "approve/": {"comment": "fine"},
    "reject/": {"comment": "no"},
    "reconcile/": {"happened": "no"},
    "takeover/": {},
    "comment/": {"comment": "looked at it"},
}
CONTEXT = [{"name": "employee_record", "value": {"id": 8}, "observed_at": "2026-11-22T10:00:00Z"}]
BODIES = {
    **{PACKET + action: body for action, body in ACTIONS.items()},
    API_REFRESH: {"context": CONTEXT},
    API_OWNER: {"owner": "it-approvers", "reason": "handed over"},
    API_OUTCOME: {"side_effect": "not_landed"},
}


def _people(allowed: dict[str, str], refused: str = "404") -> list[tuple[str, str]]:
    anonymous = "login"
    return [(who, allowed.get(who, anonymous if who == "anonymous" else refused)) for who in PEOPLE]


def _browser_rows():
    rows = []
    for who, expected in _people({"authority": "200", "superuser": "200"}):
        rows.append(("GET", PACKET, who, expected))
    for action in ACTIONS:
        for who, expected in _people({"authority": "303", "superuser": "303"}):
            rows.append(("POST", PACKET + action, who, expected))
    for who, expected in _people({"authority": "200", "auditor": "200", "superuser": "200"}):
        rows.append(("GET", EXECUTION, who, expected))
    staff_only = {"auditor": "403", "superuser": "200"}
    for who in PEOPLE:
        rows.append(("GET", ADMIN_CHANGE, who, staff_only.get(who, "admin-login")))
    delegation = {"auditor": "admin-index", "superuser": "200"}
    for who in PEOPLE:
        rows.append(("GET", ADMIN_PERMISSIONS, who, delegation.get(who, "admin-login")))
    return rows


def _api_rows():
    success = {
        ("GET", API_APPROVAL): "200",
        ("POST", API_REFRESH): "201",
        ("GET", API_EXECUTION): "200",
        ("POST", API_OWNER): "200",
        ("POST", API_OUTCOME): "200",
    }
    rows = []
    for (method, url), ok in success.items():
        for who in CALLERS:
            expected = {"right account": ok, "other account": "404"}.get(who, "401")
            rows.append((method, url, who, expected))
    return rows


ROWS = _browser_rows() + _api_rows()
# What someone allowed to see the object gets for an id that does not exist.
MISSING_FOR_ALLOWED = {ADMIN_CHANGE: "admin-index"}


@dataclass
class World:
    ids: dict
    missing: dict
    people: dict
    right_token: str
    other_token: str

    def request(self, method: str, template: str, ids: dict, who: str):
        client = Client()
        user = self.people.get(who)
        if user is not None:
            client.force_login(user)
        token = {
            "right account": self.right_token,
            "other account": self.other_token,
            "bad token": "gk_" + "x" * 43,
        }.get(who)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = template.format(**ids)
        if method == "GET":
            return client.get(url, headers=headers)
        body = BODIES[template]
        if url.startswith("/api/"):
            return client.post(
                url, json.dumps(body), content_type="application/json", headers=headers
            )
        return client.post(url, body, headers=headers)


@pytest.fixture
def world(db, agent, packet_for, make_user, alice, charlie) -> World:
    packet = packet_for(execution__thread_id="onboard-42")
    # Stale, so that the refresh the right account asks for is one the design allows (201).
    PausePacket.objects.filter(pk=packet.pk).update(fresh_until=timezone.now())
    # The packet belongs to "agent": a new token for it is the right account's.
    right_token = service_account_rotate_token(account=agent)
    other_token = service_account_create(name="someone-else")[1]
    auditor = make_user("audra", is_staff=True)
    auditor.user_permissions.add(
        Permission.objects.get(content_type__app_label="audit", codename="view_auditevent")
    )
    people = {
        "outsider": charlie,
        "other role": make_user("ivan", "it-approvers"),
        "authority": alice,
        "auditor": auditor,
        "superuser": make_user("root", is_staff=True, is_superuser=True),
    }
    people["superuser session"] = people["superuser"]
    return World(
        ids={"packet": packet.id, "execution": packet.execution.id, "thread": "onboard-42"},
        missing={"packet": uuid.uuid4(), "execution": uuid.uuid4(), "thread": "no-such-thread"},
        people=people,
        right_token=right_token,
        other_token=other_token,
    )


def outcome(response) -> str:
    # 303 is the dashboard's answer to a done action; the other redirects say "not for you".
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return "login"
        if location.startswith("/admin/login/"):
            return "admin-login"
        if location == "/admin/":
            return "admin-index"
        return f"redirect to {location}"
    return str(response.status_code)


def _require_route(url: str) -> None:
    # A removed route answers 404, which rows expecting 404 would take for a refusal.
    try:
        resolve(url.format(packet=uuid.uuid4(), execution=uuid.uuid4(), thread="t"))
    except Resolver404:
        pytest.fail(f"{url} is no longer served, but DESIGN section 7 lists it")


def _row_id(row) -> str:
    method, url, who, expected = row
    return f"{method} {url} as {who} -> {expected}"


@pytest.mark.parametrize(("method", "url", "who", "expected"), ROWS, ids=map(_row_id, ROWS))
def test_only_the_intended_get_through(world, method, url, who, expected):
    _require_route(url)

    response = world.request(method, url, world.ids, who)

    assert outcome(response) == expected, response.content[:300]


@pytest.mark.parametrize(("method", "url", "who", "expected"), ROWS, ids=map(_row_id, ROWS))
def test_a_missing_id_answers_exactly_like_a_forbidden_one(world, method, url, who, expected):
    _require_route(url)

    missing = world.request(method, url, world.missing, who)

    if expected in REFUSED:
        forbidden = world.request(method, url, world.ids, who)
        assert outcome(missing) == outcome(forbidden) == expected
        if url.startswith("/api/"):
            # Same code and same words, bar the id the caller sent.
            said = forbidden.content.decode()
            for key in world.ids:
                said = said.replace(str(world.ids[key]), str(world.missing[key]))
            assert missing.json() == json.loads(said)
    else:
        assert outcome(missing) == MISSING_FOR_ALLOWED.get(url, "404")


def test_a_route_that_no_longer_resolves_fails_the_matrix():
    with pytest.raises(pytest.fail.Exception, match="no longer served"):
        _require_route(PACKET + "no-such-action/")
