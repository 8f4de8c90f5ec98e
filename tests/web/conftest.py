import pytest

from tests.web.browser import browsing, chromium  # noqa: F401 (fixtures for the browser tests)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # The browsing fixture reads the outcome to keep a screenshot of a failed browser test.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(params=["from grants", "packet by packet"])
def read_path(request, monkeypatch):
    """The ways the queue reads: for a user holding few grants (counted in one pass over them),
    and for one holding many (each status counted up to the cap in the status index)."""
    from approvals.selectors import queue

    few = 10_000 if request.param == "from grants" else 1
    monkeypatch.setattr(queue, "QUEUE_FEW_GRANTS", few)
    return request.param


@pytest.fixture
def htmx():
    """Headers an htmx request carries."""
    return {"HX-Request": "true"}


@pytest.fixture
def logged_in(client):
    def login(user):
        client.force_login(user)
        return client

    return login
