import pytest


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
