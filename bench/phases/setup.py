"""Loading the database, accounts and a server for the phases."""

import os
import time

from bench import waiters
from bench.harness import (
    Server,
    admin_sql,
)


class SetupPhase:
    def setup(self) -> None:
        t0 = time.monotonic()
        admin_sql(
            f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)', f'CREATE DATABASE "{self.db}"'
        )
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.timings["migrate"] = time.monotonic() - t0
        self._accounts()
        t1 = time.monotonic()
        self._bulk()
        self.timings["bulk data"] = time.monotonic() - t1

    def _accounts(self) -> None:
        from django.contrib.auth.models import Group, Permission, User
        from django.contrib.contenttypes.models import ContentType

        from approvals.models import PausePacket
        from approvals.services.policies import policy_save
        from approvals.services.service_accounts import service_account_create

        account, self.token = service_account_create(name="bench")
        self.account = account
        policy_save(
            document={
                "name": "bench-allow",
                "priority": 10,
                "enabled": True,
                "match": {"tool": "bench.allow"},
                "effect": "allow",
            },
            actor="bench",
        )
        self.groups = {
            name: Group.objects.create(name=name) for name in ("reviewers", "deciders", "racers")
        }
        self.users = {}
        for name, group in (("reviewer", "reviewers"), ("decider", "deciders")):
            user = User.objects.create(username=name)
            user.set_unusable_password()
            user.save()
            user.groups.add(self.groups[group])
            self.users[name] = user
        auditor = User.objects.create(username="auditor")
        auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
        self.users["auditor"] = auditor
        racers = User.objects.bulk_create(
            [User(username=f"racer{i:02d}", password="!") for i in range(self.sizes.race_clients)]
        )
        self.groups["racers"].user_set.add(*racers)
        self.racers = racers
        self.packet_ct = ContentType.objects.get_for_model(PausePacket).id

    def _bulk(self) -> None:
        from bench import data

        s = self.sizes
        data.bulk_packets(
            prefix="q",
            count=s.open_packets,
            executions=s.packet_executions,
            account=self.account.id,
            group_id=self.groups["reviewers"].id,
            owner="reviewers",
            codenames=("view_pausepacket", "resume_pausepacket"),
            expires_seconds=3600,
        )
        data.filler_executions(account=self.account.id)
        self.timeline_id = data.timeline_execution(account=self.account.id, steps=s.timeline_steps)
        t0 = time.monotonic()
        added = data.seed_audit(
            total=s.audit_events,
            packets_prefix="q",
            packets=s.open_packets,
            executions=s.packet_executions,
            timeline_execution_id=self.timeline_id,
            timeline_steps=s.timeline_steps,
        )
        self.timings["audit seed"] = time.monotonic() - t0
        self.audit_rows = data.scalar("SELECT count(*) FROM audit_auditevent")
        self.say(f"seeded {added} audit events in {self.timings['audit seed']:.1f} s")
        # A database as it is in service, not minutes after a bulk load: without this,
        # autovacuum visits the freshly written tables while the figures are measured.
        t0 = time.monotonic()
        data.settle()
        self.timings["vacuum"] = time.monotonic() - t0

    def session_cookie(self, user) -> tuple[str, str]:
        """A logged-in session for `user`, as the login view would leave it; (Cookie, CSRF)."""
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.utils.crypto import get_random_string

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        csrf = get_random_string(32)
        if settings.CSRF_USE_SESSIONS:
            store["_csrftoken"] = csrf
        store.save()
        cookie = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
        if not settings.CSRF_USE_SESSIONS:
            cookie += f"; {settings.CSRF_COOKIE_NAME}={csrf}"
        return cookie, csrf

    def start_server(self) -> Server:
        if self.server is None:
            self.server = waiters.web_server(self, "gunicorn-a").start()
        return self.server
