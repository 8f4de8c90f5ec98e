"""The decision record in the admin: listed and readable, never added to, changed or deleted."""

import pytest
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import record_event

LIST_URL = reverse("admin:audit_auditevent_changelist")


@pytest.fixture
def events(db) -> list[AuditEvent]:
    with transaction.atomic():
        return [
            record_event("auth.login", actor="user:alice", data={"ip": "10.0.0.1"}),
            record_event(
                "packet.commented",
                actor="user:bob",
                data={"comment": "<script>alert('x')</script>", "nested": {"a": [1, 2]}},
            ),
        ]


def test_the_list_shows_seq_time_kind_actor_and_ids_newest_first(admin_client, events):
    response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    assert [event.id for event in response.context["cl"].result_list] == [
        events[1].id,
        events[0].id,
    ]
    content = response.content.decode()
    assert ">Seq</a>" in content
    assert "packet.commented" in content


def test_the_list_filters_on_kind_and_searches_the_actor(admin_client, events):
    by_kind = admin_client.get(LIST_URL, {"kind__exact": "auth.login"}).context["cl"]
    by_actor = admin_client.get(LIST_URL, {"q": "bob"}).context["cl"]

    assert [event.kind for event in by_kind.result_list] == ["auth.login"]
    assert [event.actor for event in by_actor.result_list] == ["user:bob"]


def test_an_event_shows_its_data_as_escaped_pretty_json(admin_client, events):
    url = reverse("admin:audit_auditevent_change", args=[events[1].id])

    content = admin_client.get(url).content.decode()

    assert "<script>alert" not in content
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in content
    assert "&quot;nested&quot;: {\n    &quot;a&quot;: [\n      1," in content
    assert 'name="_save"' not in content


def test_even_a_superuser_cannot_add_change_or_delete_an_event(admin_client, events):
    event = events[0]
    change = reverse("admin:audit_auditevent_change", args=[event.id])
    delete = reverse("admin:audit_auditevent_delete", args=[event.id])

    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert admin_client.post(change, {"actor": "user:mallory"}).status_code == 403
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [event.id], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.actor == "user:alice"
    assert AuditEvent.objects.count() == 2


def test_the_admin_offers_no_actions_on_events(admin_client, events):
    response = admin_client.get(LIST_URL)

    assert response.context["action_form"] is None


def test_audit_pages_need_staff(client, charlie, events):
    client.force_login(charlie)

    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
