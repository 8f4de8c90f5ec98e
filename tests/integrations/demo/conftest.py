"""The demo as a person meets it: `seed_demo` data, uvicorn on gatekeeper.asgi, and reviewers
in Chromium who log in with the demo password. One server and one browser for the module.

The server is a process of its own reading the test database, so what it and the examples
write is committed: the fixture seeds outside any test transaction and flushes at the end, and
the tests use the database as `django_db` tests (in a transaction rolled back at their end,
which sees what the server commits); a transactional test's flush would take the demo away.
"""

import contextlib
import os
import re
import sys
import urllib.request

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from approvals.demo import DEMO_PASSWORD
from approvals.services.service_accounts import service_account_create
from tests.background.processes import BASE_DIR, ChildProcess, database_url, free_port, stop_all
from tests.web.browser import Browsing, chromium  # noqa: F401 - the module's browser

MARK = "demo_examples"
REDIS_URL = os.environ.get("GATEKEEPER_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


def pytest_configure(config):
    # Run these alone with `-m demo_examples` (or leave them out with `-m "not demo_examples"`).
    config.addinivalue_line("markers", f"{MARK}: the examples against the demo server")


class DemoServer(ChildProcess):
    """uvicorn on the production ASGI entry, as `manage.py demo` serves it."""

    def __init__(self, env: dict, log_dir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "uvicorn", "gatekeeper.asgi:application"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--app-dir", str(BASE_DIR)]
        super().__init__("demo-server", argv, {**env, "GATEKEEPER_BASE_URL": self.url}, log_dir)

    def is_ready(self) -> bool:
        login = f"{self.url}/accounts/login/"
        with contextlib.suppress(OSError), urllib.request.urlopen(login, timeout=2) as answer:
            return answer.status == 200
        return False


@pytest.fixture(scope="module")
def db_read(django_db_setup, django_db_blocker):
    """The test database outside a test's transaction: seeding, and the module's end."""
    return django_db_blocker.unblock


@pytest.fixture(scope="module")
def demo(db_read, tmp_path_factory):
    """The demo's data and its server; a service account of the examples' own; its token."""
    with db_read():
        call_command("seed_demo", verbosity=0)
        account, token = service_account_create(name="examples-on-demo")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": REDIS_URL,
        "DEBUG": "true",  # as the demo runs: the server serves its static files
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    server = DemoServer(env, tmp_path_factory.mktemp("demo-server"))
    try:
        server.wait_ready(timeout=60)
        server.account, server.token = account, token
        yield server
    finally:
        stop_all([server])
        print(f"--- demo server log (tail) ---\n{server.log()[-4000:]}")
        with db_read():
            call_command("flush", interactive=False, verbosity=0)
            connections.close_all()  # the test database is dropped at the session's end


@pytest.fixture(scope="module")
def reviewers(chromium, demo):  # noqa: F811 - the fixture imported above
    """alice and bob (the demo's IT approvers), each logged in through the login form."""
    session = Browsing(chromium=chromium, base_url=demo.url)
    pages = {}
    for name in ("alice", "bob"):
        pages[name] = session.page()
        session.login(pages[name], name, DEMO_PASSWORD)
        assert re.search(r"/approvals/$", pages[name].url)
    yield pages
    session.close()
    assert not session.dialogs, f"JavaScript dialogs opened: {session.dialogs}"
    assert not session.errors, "errors in the browser:\n" + "\n".join(session.errors)
