"""CrewAI's own environment (.venv-crewai): crewai pins mcp<2, openai<3, pydantic<2.13 and
httpx 0.28, which the server's environment (the client's other extras) exceeds. It is built once,
with the client installed editable, and rebuilt when client/pyproject.toml changes. No Django
here: the demo's test and the CrewAI tests both ask it for their interpreter."""

import hashlib
import shutil
import subprocess
from pathlib import Path

from gatekeeper.bootstrap import _candidates, _version_of
from tests.side_venvs import built_once

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-crewai"
PYTHON = VENV / "bin" / "python"


def _crewai_supported_python() -> str:
    """The newest Python crewai supports (3.10 to 3.13) on this machine."""
    found = {}
    for python in _candidates():
        version = _version_of(python)
        if version and (3, 10) <= version <= (3, 13):
            found.setdefault(version, python)
    if not found:
        raise RuntimeError("crewai needs Python 3.10 to 3.13, and none was found")
    return found[max(found)]


def python() -> str:
    """The environment's interpreter, with crewai and the client (editable) installed."""
    stamp = hashlib.sha256((ROOT / "client" / "pyproject.toml").read_bytes()).hexdigest()
    return str(built_once(VENV, stamp, _build))


def _build() -> None:
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([_crewai_supported_python(), "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["--editable", f"{ROOT / 'client'}[crewai]"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if install.returncode != 0:
        raise RuntimeError(f"crewai would not install: {install.stderr[-3000:]}")
