import os
import sys
from contextlib import nullcontext

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.test.utils import override_settings
from django.urls import Resolver404, resolve

from approvals.demo import (
    DEMO_PASSWORD,
    SERVICE_ACCOUNT,
    USERS,
    DemoSeedFailed,
    SeedResult,
    demo_seed,
)
from approvals.management.commands.seed_demo import report_seed
from gatekeeper.env import env_str

HOST = "127.0.0.1"


class Command(BaseCommand):
    help = (
        "Try Gatekeeper: migrate the database, load the demo data, and serve it on "
        f"http://{HOST}:8000/ with Django's development server."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on (8000)")
        parser.add_argument(
            "--no-serve", action="store_true", help="Set up the database and demo data only"
        )

    def handle(self, *args, port: int, no_serve: bool, verbosity: int, **options):
        if not 0 < port < 65536:
            raise CommandError(f"--port must be from 1 to 65535, not {port}")
        base_url = f"http://{HOST}:{port}"
        # Links in stored API answers and emails must point at the server this demo starts.
        # Settings are read from the environment once; when GATEKEEPER_BASE_URL is not set,
        # the demo's own port is the truthful value for everything this process does.
        if env_str("GATEKEEPER_BASE_URL") is None:
            overrides = override_settings(GATEKEEPER_BASE_URL=base_url)
        else:
            overrides = nullcontext()
        with overrides:
            self.stdout.write("Preparing the database ...")
            call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0))
            try:
                result = demo_seed()
            except DemoSeedFailed as error:
                raise CommandError(f"{error} (nothing was written)") from error
            if verbosity > 1:
                report_seed(self.stdout, result)
            self.stdout.write(self.banner(base_url, result, serving=not no_serve))
            if not settings.DEBUG:
                self.stderr.write(
                    "DEBUG is off: the development server will not serve static files, and "
                    "ALLOWED_HOSTS must include 127.0.0.1. Unset DEBUG for the demo."
                )
        if no_serve:
            return
        connections.close_all()
        self.stdout.flush()
        sys.stdout.flush()
        # The server becomes a plain `manage.py runserver` reading this environment, so its
        # settings come from where every other process gets them; exec, not a child process,
        # so Ctrl-C and kill reach the server itself and nothing is left behind.
        if env_str("GATEKEEPER_BASE_URL") is None:
            os.environ["GATEKEEPER_BASE_URL"] = base_url
        argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", "--noreload"]
        os.execv(sys.executable, [*argv, f"{HOST}:{port}"])  # noqa: S606 - our own manage.py

    def banner(self, base_url: str, result: SeedResult, *, serving: bool) -> str:
        width = max(len(name) for name in USERS)
        lines = [
            "",
            "=" * 72,
            "  Gatekeeper demo",
            "",
            f"  Admin:      {base_url}/admin/",
        ]
        if _resolves("/approvals/"):
            lines.append(f"  Reviewers:  {base_url}/approvals/")
        lines += ["", "  Log in as:"]
        lines += [f"    {name:<{width}}  {role}" for name, (_groups, role) in USERS.items()]
        lines += ["", f"  Password:   {DEMO_PASSWORD}   (every demo user, as first created)"]
        if result.users_existing:
            lines.append("              users already present kept their passwords")
        if result.token:
            lines += [
                "",
                f"  API token of service account {SERVICE_ACCOUNT} (shown once, save it now):",
                f"token={result.token}",
            ]
        else:
            lines += [
                "",
                f"  Service account {SERVICE_ACCOUNT} exists: its token was shown once, when made.",
                "  For another: python3 manage.py create_service_account NAME",
            ]
        lines += [""]
        lines += ["  Stop with Ctrl-C."] if serving else ["  Serve it with: python3 manage.py demo"]
        lines += ["=" * 72, ""]
        return "\n".join(lines)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
