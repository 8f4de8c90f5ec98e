"""CrewAI runs in an environment of its own (.venv-crewai): crewai pins mcp<2, openai<3,
pydantic<2.13 and httpx 0.28, which the server's environment (the client's other extras)
exceeds. It is built once, with the client installed editable, and rebuilt when
client/pyproject.toml changes."""

import hashlib
import os
import shutil
import subprocess

import pytest

from gatekeeper.bootstrap import _candidates, _version_of
from tests.integrations.conftest import ROOT

VENV = ROOT / ".venv-crewai"
OFFLINE = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false"}
OFFLINE["OTEL_SDK_DISABLED"] = "true"


def _crewai_supported_python() -> str:
    """The newest Python crewai supports (3.10 to 3.13) on this machine."""
    found = {}
    for python in _candidates():
        version = _version_of(python)
        if version and (3, 10) <= version <= (3, 13):
            found.setdefault(version, python)
    if not found:
        pytest.fail("crewai needs Python 3.10 to 3.13, and none was found")
    return found[max(found)]


@pytest.fixture(scope="session")
def crewai_python() -> str:
    python = VENV / "bin" / "python"
    stamp_file = VENV / ".gatekeeper-installed"
    stamp = hashlib.sha256((ROOT / "client" / "pyproject.toml").read_bytes()).hexdigest()
    if python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return str(python)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([_crewai_supported_python(), "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["--editable", f"{ROOT / 'client'}[crewai]"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, f"crewai would not install: {install.stderr[-3000:]}"
    stamp_file.write_text(stamp)
    return str(python)


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
