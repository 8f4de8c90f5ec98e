"""CrewAI runs in an environment of its own (.venv-crewai, built by `environment.python()`)."""

import os
import subprocess

import pytest

from tests.integrations.crewai import environment

OFFLINE = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false"}
OFFLINE["OTEL_SDK_DISABLED"] = "true"


@pytest.fixture(scope="session")
def crewai_python() -> str:
    return environment.python()


def run_in_crewai(python: str, arguments: list, live_server, token: str, stdin=None) -> str:
    """Run `python arguments` (.venv-crewai's) as an agent against the live server; its
    stdout. It must exit 0."""
    env = {**os.environ, "GATEKEEPER_URL": live_server.url, "GATEKEEPER_TOKEN": token}
    run = subprocess.run(
        [python, *arguments],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.fixture
def offline(monkeypatch):
    """CrewAI's telemetry and trace export off, for the processes the test starts."""
    for name, value in OFFLINE.items():
        monkeypatch.setitem(os.environ, name, value)
