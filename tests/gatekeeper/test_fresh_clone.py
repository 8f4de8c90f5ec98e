"""A fresh clone with nothing in the environment works as the README says (DESIGN section 10).

SLOW: the slowest test in this folder (about half a minute on an idle machine, minutes when
eight test runs share two cores): it clones this checkout's
HEAD, starts a new embedded PostgreSQL (initdb, then migrations and the demo's seed), and runs
every command a new user would. The embedded database is the point: it is what a fresh clone
gets, and what every later command must find again. The clone shares this checkout's .venv
through a symlink, as installing it again would take minutes.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gatekeeper.embedded_db import stop
from gatekeeper.local_env import FILE_NAME
from gatekeeper.startup import EXIT_CONFIGURATION_ERROR

ROOT = Path(__file__).resolve().parents[2]
# A new user's shell: no Gatekeeper, Django, Celery or database variable at all.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@pytest.fixture
def clone(monkeypatch):
    # Under /tmp directly: the embedded server's socket path must stay short.
    path = Path(tempfile.mkdtemp(prefix="gk-clone-", dir="/tmp")) / "gatekeeper"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True, timeout=120)
    (path / ".venv").symlink_to(ROOT / ".venv")
    yield path
    # The clone's server, found through its own runtime directory (gatekeeper.embedded_db).
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path / ".data" / "run"))
    stop(path / ".data")
    shutil.rmtree(path.parent, ignore_errors=True)


def manage(clone: Path, *args: str, **env) -> subprocess.CompletedProcess:
    environment = {key: os.environ[key] for key in KEPT if key in os.environ}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_readme_command_works_after_the_demo_with_nothing_set(clone):
    demo = manage(clone, "demo", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    assert "token=gk_" in demo.stdout
    assert (clone / ".data" / FILE_NAME).exists()
    assert (clone / ".data" / "postgres" / "postmaster.pid").exists()

    audit = manage(clone, "verify_audit")
    assert audit.returncode == 0 and "head=" in audit.stdout, audit.stderr
    for command in (
        ["sweep"],
        ["create_service_account", "fresh-clone-bot"],
        ["export_policies"],
        ["seed_demo"],
        ["shell", "-c", "from approvals.models import Execution; print(Execution.objects.count())"],
    ):
        result = manage(clone, *command)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "Traceback" not in result.stderr, command

    bad = manage(clone, "sweep", EMAIL_PORT="twenty-five")
    assert bad.returncode == EXIT_CONFIGURATION_ERROR
    assert bad.stderr == (
        "Configuration error: EMAIL_PORT must be a whole number, not 'twenty-five'\n"
    )
