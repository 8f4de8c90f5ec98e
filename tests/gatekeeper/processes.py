"""Gatekeeper's entry points started as their users start them, in a chosen environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# The harness's own variables, and those a test decides for itself.
NOT_INHERITED = ("DEBUG", "SECRET_KEY", "GATEKEEPER_LOCAL_ENV", "DJANGO_SETTINGS_MODULE")

SHOW_SETTINGS = (
    "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY, "
    "settings.GATEKEEPER_BASE_URL)"
)
ENTRY_POINTS = {
    "manage.py": [PYTHON, "manage.py", "check"],
    "celery": [PYTHON, "-m", "celery", "-A", "gatekeeper.celery", "report"],
    "wsgi": [PYTHON, "-c", "import gatekeeper.wsgi"],
    "asgi": [PYTHON, "-c", "import gatekeeper.asgi"],
}


def bare_environment(data_dir: Path, **env) -> dict[str, str]:
    """This machine's environment as a new user's shell has it: no Gatekeeper settings.

    The database stays the test server's, so that no embedded PostgreSQL starts.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and not key.startswith(("PYTEST", "GATEKEEPER_"))
    }
    environment["GATEKEEPER_DATA_DIR"] = str(data_dir)
    environment["GATEKEEPER_NO_BOOTSTRAP"] = "1"
    environment.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatekeeper")
    environment.update(env)
    return {key: value for key, value in environment.items() if value is not None}


def run(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def manage(data_dir: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return run([PYTHON, "manage.py", *args], bare_environment(data_dir, **env))


def settings_seen(data_dir: Path, **env) -> list[str]:
    """DEBUG, SECRET_KEY and GATEKEEPER_BASE_URL as a `manage.py shell` sees them."""
    result = manage(data_dir, "shell", "-c", SHOW_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1].split()  # after "N objects imported automatically"
