"""`pip install ./client` alone: an agent's environment gets `gatekeeper_client`, no Django.

The client folder is copied out of the repository first, so nothing of the server is within
reach, and installed into an empty virtualenv of the oldest Python the client supports (3.10)
when this machine has one.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.models import GateCheck
from gatekeeper.bootstrap import _version_of

CLIENT = Path(__file__).resolve().parents[2] / "client"


def _oldest_supported_python() -> str:
    pyenv = os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3")
    found = [shutil.which("python3.10"), *sorted(glob.glob(pyenv))]
    # A pyenv shim is found even when it cannot run that version: ask each.
    runs = (python for python in found if python and _version_of(python) == (3, 10))
    return next(runs, sys.executable)


@pytest.fixture(scope="module")
def agent_python(tmp_path_factory) -> Path:
    """The python of an empty virtualenv (not even pip) into which ./client was installed."""
    root = tmp_path_factory.mktemp("agent")
    source = shutil.copytree(
        CLIENT, root / "client", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    venv = root / "venv"
    subprocess.run([_oldest_supported_python(), "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
        + ["--disable-pip-version-check", source],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    return python


def _run(python: Path, code: str, **env: str) -> str:
    # -I: no PYTHONPATH, no user site, not the working directory: only what the venv holds.
    result = subprocess.run(
        [python, "-I", "-c", code],
        cwd=python.parent,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_client_installs_alone_with_nothing_else(agent_python):
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", agent_python, "list", "--format", "json"]
        + ["--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [package["name"] for package in json.loads(listed.stdout)] == ["gatekeeper-client"]


def test_it_imports_where_django_is_not_installed(agent_python):
    out = _run(
        agent_python,
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('django') is None, 'django is installed'\n"
        "import gatekeeper_client\n"
        "assert gatekeeper_client.__file__.startswith(sys.prefix), gatekeeper_client.__file__\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'httpx')]\n"
        "print(gatekeeper_client.GatekeeperClient('http://h', 't'))",
    )
    assert out == "GatekeeperClient('http://h')"


def test_the_installed_client_gates_a_step_on_the_server(agent_python, live_server, gk_account):
    out = _run(
        agent_python,
        "import os\n"
        "from gatekeeper_client import GatekeeperClient\n"
        "gk = GatekeeperClient(os.environ['GATEKEEPER_URL'], os.environ['GATEKEEPER_TOKEN'])\n"
        "decision = gk.check('onboard-9', 'hr-onboarding', 0, 'lookup', 'hr.read', {'id': 7})\n"
        "print(decision.decision, decision.check_id)",
        GATEKEEPER_URL=live_server.url,
        GATEKEEPER_TOKEN=gk_account[1],
    )
    decision, check_id = out.split()
    assert decision == "require_approval"
    assert str(GateCheck.objects.get().id) == check_id


def test_the_async_client_names_the_extra_it_needs(agent_python):
    out = _run(
        agent_python,
        "try:\n"
        "    from gatekeeper_client import AsyncGatekeeperClient\n"
        "except ImportError as error:\n"
        "    print(error)",
    )
    assert out == 'AsyncGatekeeperClient needs httpx: pip install "gatekeeper-client[async]"'
