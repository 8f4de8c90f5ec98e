"""Airflow's own environment for its tests: `.venv-airflow`, built once and reused.

Airflow 3 pins FastAPI and OpenTelemetry below what Prefect takes, so it cannot share `.venv`.
Like the bootstrap, this builds only when the requirements changed (one file read otherwise);
the first build downloads Airflow (minutes; the figure is in the engines' docs section).
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.side_venvs import built_once

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-airflow"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ["apache-airflow==3.3.2", "apache-airflow-providers-standard==1.21.0"]


def _stamp() -> str:
    client = (ROOT / "client" / "pyproject.toml").read_bytes()
    return hashlib.sha256(repr(REQUIREMENTS).encode() + client).hexdigest()


def ensure() -> Path:
    """The environment's python, with Airflow and the client (editable) installed."""
    return built_once(VENV, _stamp(), _build)


def _build() -> None:
    if not PYTHON.exists():
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", "--editable", str(ROOT / "client")], check=True)


if __name__ == "__main__":
    print(ensure(), file=sys.stderr if os.environ.get("QUIET") else sys.stdout)
