"""Every page's forms and filters driven with hostile text: never a 5xx, nothing written when
refused.

The pages come from the URLconf (every named route outside the API, whose schema has its own
property test), so a new page or form is driven without being listed here. Each page is read
once as a superuser; the forms and links on it say which fields it takes, and each is sent
hostile values as raw, percent-encoded bytes: NUL, UTF-8 of a lone surrogate (%ED%A0%80), bytes
that are no UTF-8 at all (%FF), 100 kB, bidi and invisible controls, JSON that PostgreSQL's
jsonb cannot hold, numbers and dates out of range.
"""

import hashlib
import os
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import ERROR, get_messages
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.models import Execution, OutboxMessage, PausePacket, Policy, ServiceAccount, Vote
from approvals.services.executions import step_record_outcome
from approvals.services.review import packet_approve
from audit.models import AuditEvent

# Names a page might read besides those its forms and links show (an action URL has no form).
FILTER_NAMES = (
    "q", "status", "workflow", "owner", "policy", "kind", "actor", "since", "until", "page",
    "before", "after", "days", "search", "next", "o", "p", "e", "_changelist_filters",
    "comment", "args", "happened", "username", "password", "request",
)  # fmt: skip
CANONICAL = (
    "",
    "%00",
    "a%00b",
    "%ED%A0%80",  # UTF-8 of the lone surrogate U+D800
    "%ED%B0%80%ED%A0%80",
    "%FF",
    "%C0%80",  # an overlong NUL
    "A" * 100_000,
    quote("invoice\u202efdp.exe"),
    quote("\u2066\u200b\u200f\ufeff\u2060\x85\x1b[31m"),
    quote('{"a": "\\u0000"}'),
    quote('{"a": "\\ud800"}'),
    quote('{"\\u0000": NaN}'),
    quote("[" * 5000 + "]" * 5000),
    "-1",
    "99999999999999999999999999",
    quote("²"),
    quote("١٢"),
    "9999-12-31T23:59:59.999999+14:00",
    "0000-00-00",
)
HOSTILE_CHARACTERS = "\x00\x01\x1b\x7f\x85\u200b\u200e\u202a\u202e\u2066\u2069\ufeff\ud800\udfff"


def _encode(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


HOSTILE = st.one_of(
    st.sampled_from(CANONICAL),
    st.text(alphabet=st.sampled_from(HOSTILE_CHARACTERS + 'ab{}[]":,0\\u')).map(_encode),
    st.text().map(_encode),
    st.binary(max_size=64).map(lambda raw: quote(raw, safe="")),
    st.builds(lambda part, times: part * times, st.sampled_from(CANONICAL[1:7]), st.just(20_000)),
)
# Signs out, or deletes what the rest of the run stands on (a POST there is a delete).
NOT_POSTED = ("logout", "_delete")


def _routes():
    def walk(patterns, prefix, namespaces):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                namespace = (pattern.namespace,) if pattern.namespace else ()
                yield from walk(pattern.url_patterns, route, namespaces + namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield route, ":".join((*namespaces, pattern.name)), pattern.pattern.regex

    for route, name, regex in walk(get_resolver().url_patterns, "", ()):
        if not route.startswith("api/"):
            yield pytest.param(name, list(regex.groupindex), id=name)


ROUTES = list(_routes())


class _Forms(HTMLParser):
    """The forms on a page (method, action, field names) and the query names of its links."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.link_names: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (attrs.get("method") or "get").lower(),
                    "action": attrs.get("action") or "",
                    "names": set(),
                }
            )
        elif tag in ("input", "textarea", "select", "button") and attrs.get("name"):
            if self.forms:
                self.forms[-1]["names"].add(attrs["name"])
        elif tag == "a" and "?" in (attrs.get("href") or ""):
            query = urlsplit(attrs["href"]).query
            self.link_names.update(name for name, _ in parse_qsl(query, keep_blank_values=True))


@pytest.fixture
def world(db, alice, bob, agent, packet_for, policy, gate):
    """One of everything a page may show, and a superuser to see it all."""
    policy(name="two-eyes", required_approvals=2, allow_edit=True)
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=alice)
    gate(step__index=1, action__tool="email.send", action__side_effect="not_started")
    step_record_outcome(
        service_account=agent,
        thread_id=packet.execution.thread_id,
        step_index=9,
        side_effect="landed",
        detail={},
    )
    root = User.objects.create_superuser("root", "root@example.com", "pw-root")
    victim = User.objects.create_user("victim", "victim@example.com", "pw-victim")
    return {
        "packet_id": packet.id,
        "object_pk": packet.id,
        "execution_id": packet.execution_id,
        "user_id": alice.id,
        "id": victim.id,
        "group_id": Group.objects.get(name="reviewers").id,
        "app_label": "approvals",
        "content_type_id": ContentType.objects.get_for_model(PausePacket).id,
        "root": root,
        "victim": victim,
    }


def _url(name: str, kwarg_names: list[str], world: dict) -> str:
    kwargs = {key: world[key] for key in kwarg_names if key != "object_id"}
    if "object_id" in kwarg_names:
        if name == "admin:view_on_site":
            kwargs["object_id"] = world["packet_id"]
        else:
            app_label, model_name = name.removeprefix("admin:").split("_")[:2]
            model = apps.get_model(app_label, model_name)
            chosen = world["victim"] if model is User else model.objects.order_by("pk").first()
            kwargs["object_id"] = chosen.pk if chosen else 1
    return reverse(name, kwargs=kwargs)


def _written() -> str:
    """A fingerprint of everything an action could change (a refused sign-in is recorded, by
    design: the record keeps failed and locked-out attempts)."""
    state = (
        AuditEvent.objects.exclude(kind__startswith="auth.").count(),
        Vote.objects.count(),
        OutboxMessage.objects.count(),
        list(PausePacket.objects.order_by("id").values_list("status", "owner", "edited_args")),
        list(Execution.objects.order_by("id").values_list("owner", "workflow")),
        list(Policy.objects.order_by("id").values_list("version", "enabled", "approvers")),
        list(ServiceAccount.objects.order_by("id").values_list("name", "is_active", "token_hash")),
        list(User.objects.order_by("id").values_list("username", "password", "is_active")),
        Group.objects.count(),
    )
    return hashlib.sha256(repr(state).encode()).hexdigest()


def _refused(response) -> bool:
    errors = [m for m in get_messages(response.wsgi_request) if m.level >= ERROR]
    return response.status_code >= 400 or bool(errors)


class _Driver:
    def __init__(self, world, name, kwarg_names):
        self.world = world
        self.client = Client(raise_request_exception=False)
        self.url = _url(name, kwarg_names, world)
        self.client.force_login(world["root"])
        page = self.client.get(self.url)
        assert page.status_code < 500, (self.url, page.status_code)
        parser = _Forms()
        if page.get("Content-Type", "").startswith("text/html") and not page.streaming:
            parser.feed(page.content.decode("utf-8", "replace"))
        self.get_names = set(FILTER_NAMES) | parser.link_names
        self.posts = []
        for form in parser.forms:
            action = form["action"] or self.url
            if form["method"] == "get":
                self.get_names |= form["names"]
            elif not any(part in action or part in name for part in NOT_POSTED):
                self.posts.append((action, sorted(form["names"])))
        if not any(part in name for part in NOT_POSTED):
            self.posts.append((self.url, sorted(self.get_names)))

    def send(self, values: list[str], *, htmx: bool = False) -> None:
        """Each field gets the next of `values` (percent-encoded already); htmx asks for the
        fragment a page answers htmx with."""

        def body(names):
            return "&".join(f"{_encode(n)}={values[i % len(values)]}" for i, n in enumerate(names))

        headers = {"HX-Request": "true"} if htmx else {}
        self.client.force_login(self.world["root"])
        response = self.client.get(f"{self.url}?{body(sorted(self.get_names))}", headers=headers)
        assert response.status_code < 500, ("GET", self.url, response.status_code)
        for action, names in self.posts:
            before = _written()
            self.client.force_login(self.world["root"])
            response = self.client.post(
                action,
                body(names),
                content_type="application/x-www-form-urlencoded",
                headers=headers,
            )
            assert response.status_code < 500, ("POST", action, names, response.status_code)
            if _refused(response):
                assert _written() == before, ("refused, yet written", action, names)


@pytest.mark.parametrize(("name", "kwarg_names"), ROUTES)
def test_each_hostile_value_in_every_field_is_never_a_server_error(world, name, kwarg_names):
    driver = _Driver(world, name, kwarg_names)
    for position, value in enumerate(CANONICAL):
        driver.send([value], htmx=position % 2 == 1)


@pytest.mark.parametrize(("name", "kwarg_names"), ROUTES)
def test_hostile_mixtures_in_every_field_are_never_a_server_error(world, name, kwarg_names):
    driver = _Driver(world, name, kwarg_names)

    @settings(
        max_examples=int(os.environ.get("GATEKEEPER_HOSTILE_EXAMPLES", "5")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(values=st.lists(HOSTILE, min_size=1, max_size=6), htmx=st.booleans())
    def mixture(values, htmx):
        driver.send(values, htmx=htmx)

    mixture()


def test_the_pages_driven_include_every_dashboard_form_and_filter():
    names = {param.values[0] for param in ROUTES}
    assert {
        "approvals:queue",
        "approvals:packet",
        "approvals:approve",
        "approvals:reject",
        "approvals:reconcile",
        "approvals:takeover",
        "approvals:comment",
        "audit:browser",
        "audit:export",
        "approvals:execution",
        "metrics:sla",
        "login",
        "admin:approvals_policy_dry_run",
        "admin:approvals_policy_change",
    } <= names
