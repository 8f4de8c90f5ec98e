"""Browser fixtures: Playwright for Python driving the machine's Chromium against `live_server`.

`python3 manage.py test` installs Chromium when it can; when it cannot, it sets
GATEKEEPER_BROWSER_SKIP to the reason, and every browser test skips saying so (pytest's `-ra`
summary lists it), or fails under CI (tests.required). Playwright's own browser download is
never used.
"""

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from tests.required import service_missing

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SKIP_VARIABLE = "GATEKEEPER_BROWSER_SKIP"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# Every test process imports this while collecting, before any test of the run starts.
IMPORTED_AT = time.time()


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per module; each test opens its own contexts.

    Not per session: Playwright's sync API marks an asyncio loop running in this thread while it
    is open, which would break every later test of the worker that runs a loop of its own
    (asyncio.run, Prefect, Temporal) and a second Playwright (the demo's conftest imports this).
    """
    reason = os.environ.get(SKIP_VARIABLE, "").strip()
    if reason:
        service_missing(f"the browser tests cannot run: {reason}")
    executable = shutil.which("chromium")
    if executable is None:
        service_missing(
            "the browser tests cannot run: `chromium` is not on PATH "
            "(`python3 manage.py test` installs it with apt-get when run as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing(
            "the browser tests cannot run: the playwright package is missing (dev extras)"
        )

    # Playwright's sync API keeps an asyncio loop running in this thread, so Django would refuse
    # ORM calls from the test (fixtures, assertions, the transactional flush) with
    # SynchronousOnlyOperation. Nothing here is async: the calls are plain blocking ones.
    # A failure screenshot from an earlier run would pass for one of this run. Only earlier
    # ones: another xdist worker may have failed a test of this run already.
    for stale in ARTIFACTS.glob("failed-*.png"):
        with contextlib.suppress(FileNotFoundError):  # a worker took it first
            if stale.stat().st_mtime < IMPORTED_AT:
                stale.unlink()

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
            # With a loop marked running, Django keeps this thread's connections apart from its
            # plain thread-local ones (asgiref's Local for thread-critical handles), and they
            # outlive the module: the next module with a browser would get them back, by then
            # perhaps cut by a test that cuts connections, and fail every test on "connection
            # is closed". Close them while that storage is still the one in use.
            connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Browsing:
    """Pages on the live server, and everything that went wrong in them."""

    chromium: object
    base_url: str
    contexts: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def page(self, user=None, **options):
        """A new page in a fresh browser context, logged in as `user` when given."""
        context = self.chromium.new_context(base_url=self.base_url, viewport=VIEWPORT, **options)
        self.contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME]
            context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": self.base_url}])
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("dialog", self._dialog)
        return page

    def login(self, page, username: str, password: str) -> None:
        """Log in through the login form, as a person would."""
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/approvals/$"))

    def expect_error(self, pattern: str) -> None:
        """Take out the console errors the test caused on purpose (a 404 page load says so)."""
        self.errors[:] = [error for error in self.errors if not re.search(pattern, error)]

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({message.location})")

    def _dialog(self, dialog) -> None:
        # An alert means agent text ran as script: record it, and close it so the page goes on.
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(chromium, live_server, request):
    """Browser pages on the live server; the test fails on any console error, page error or
    JavaScript dialog, and leaves a screenshot of each page under test-artifacts/ if it fails."""
    session = Browsing(chromium=chromium, base_url=live_server.url)
    yield session
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for index, context in enumerate(session.contexts):
            for number, page in enumerate(context.pages):
                page.screenshot(
                    path=ARTIFACTS / f"failed-{request.node.name}-{index}-{number}.png",
                    full_page=True,
                )
    session.close()
    assert not session.dialogs, f"JavaScript dialogs opened: {session.dialogs}"
    assert not session.errors, "errors in the browser:\n" + "\n".join(session.errors)


def screenshot(page, name: str, directory: Path | None = None) -> Path:
    """Save a full-page screenshot (test-artifacts/ unless told otherwise) and return its path."""
    directory = directory or ARTIFACTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    return path
