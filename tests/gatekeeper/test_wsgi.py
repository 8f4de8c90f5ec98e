"""The WSGI entry point: what every web process loads first."""

import os
import subprocess
import sys

CHECK = (
    "import gc; import gatekeeper.wsgi as w; "
    "print(callable(w.application), gc.get_freeze_count() > 10000)"
)


def test_the_application_loads_and_its_startup_objects_are_frozen_out_of_the_collector():
    # A fresh interpreter, as gunicorn's worker: frozen objects are skipped by every collection,
    # so a full collection no longer pauses a worker for tens of milliseconds.
    environment = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/gatekeeper",
        "DJANGO_SETTINGS_MODULE": "gatekeeper.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHECK], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
