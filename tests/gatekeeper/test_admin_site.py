"""The admin site's check in front of every page: text PostgreSQL cannot take is refused."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from approvals.models import Policy
from gatekeeper.admin_site import GatekeeperAdminSite


def _changelists():
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def test_the_admin_site_is_ours():
    assert isinstance(admin.site, GatekeeperAdminSite)


@pytest.mark.parametrize("query", ["q=%00", "workflow__exact=a%00b", "status__exact=%00", "%00=1"])
def test_a_filter_holding_a_nul_is_dropped_with_a_message_on_every_change_list(
    client, packet_for, query
):
    packet_for()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    for url in _changelists():
        response = client.get(f"{url}?{query}")
        assert (response.status_code, response["Location"]) == (303, url), url
        page = client.get(url)
        assert page.status_code == 200, url
        assert "a NUL character, so it was ignored." in page.content.decode(), url


def test_a_form_post_holding_a_nul_changes_nothing(client, policy):
    policy(name="p1")
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    url = reverse("admin:approvals_policy_change", args=[Policy.objects.get().pk])
    response = client.post(url, {"name": "p1", "effect": "block", "approvers": "x\x00y"})
    assert response.status_code == 303 and response["Location"] == url
    assert Policy.objects.get().effect == "require_approval"


def test_a_date_drill_down_past_any_year_is_dropped_with_a_message(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    url = reverse("admin:axes_accesslog_changelist")
    response = client.get(f"{url}?attempt_time__year=99999999999999999999999")
    assert (response.status_code, response["Location"]) == (303, url)
    assert "is not a year, month or day" in client.get(url).content.decode()


def test_an_empty_to_field_on_a_change_form_is_dropped_with_a_message(client, policy):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    url = reverse("admin:approvals_policy_change", args=[policy(name="p1").pk])
    response = client.get(f"{url}?_to_field=")
    assert (response.status_code, response["Location"]) == (303, url)
    assert "names no field" in client.get(url).content.decode()
