"""What a test does when a service it needs (Redis, Chromium, PostgreSQL's tools) is missing.

It skips, saying why; under CI (`CI=true`) it fails instead, so that a CI machine without the
service cannot pass by running less. `python3 manage.py test` brings up what it can first.
"""

from typing import NoReturn

import pytest

from gatekeeper.env import env_bool


def service_missing(reason: str) -> NoReturn:
    if env_bool("CI", False):
        pytest.fail(f"{reason} (CI is set: a missing service fails the run)", pytrace=False)
    pytest.skip(reason)
