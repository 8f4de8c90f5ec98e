"""Every form and every htmx post carries the CSRF token, and a post without it is refused."""

import re

import pytest
from django.test import Client

ACTIONS = ["approve", "reject", "reconcile", "takeover", "comment"]


@pytest.fixture
def strict(db):
    """A browser that does not get CSRF checks waived, as the test client otherwise does."""
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_posted_without_the_token_is_refused(strict, alice, packet_for, action):
    packet = packet_for()
    strict.force_login(alice)

    plain = strict.post(f"/approvals/{packet.id}/{action}/", {"comment": "x", "happened": "no"})
    htmx = strict.post(
        f"/approvals/{packet.id}/{action}/", {"comment": "x"}, headers={"HX-Request": "true"}
    )

    assert plain.status_code == htmx.status_code == 403
    packet.refresh_from_db()
    assert packet.status == "pending"


def test_an_htmx_post_with_the_header_from_body_hx_headers_goes_through(strict, alice, packet_for):
    packet = packet_for()
    strict.force_login(alice)
    page = strict.get(f"/approvals/{packet.id}/").content.decode()
    token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)

    response = strict.post(
        f"/approvals/{packet.id}/approve/",
        {"comment": ""},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    assert response.status_code == 200
    packet.refresh_from_db()
    assert packet.status == "approved"


def test_login_and_logout_without_the_token_are_refused(strict, alice):
    assert (
        strict.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}).status_code
        == 403
    )
    strict.force_login(alice)
    assert strict.post("/accounts/logout/").status_code == 403


def test_an_admin_change_without_the_token_is_refused(strict, admin_user):
    strict.force_login(admin_user)

    response = strict.post(
        "/admin/approvals/policy/add/", {"name": "sneaky", "priority": 1, "effect": "allow"}
    )

    assert response.status_code == 403


def test_every_post_form_on_the_pages_carries_the_token(client, alice, packet_for):
    packet = packet_for()
    pages = [client.get("/accounts/login/").content.decode()]
    client.force_login(alice)
    pages += [
        client.get(url).content.decode() for url in ("/approvals/", f"/approvals/{packet.id}/")
    ]

    forms = [form for page in pages for form in re.findall(r"<form\b.*?</form>", page, re.S)]
    posting = [form for form in forms if re.search(r'method="post"', form, re.I)]
    assert len(posting) >= 5
    for form in posting:
        assert 'name="csrfmiddlewaretoken"' in form, form[:200]
