"""The embedded PostgreSQL used when DATABASE_URL is unset: starts, is shared, survives restarts."""

import shutil
import subprocess
import sys

import psycopg
import pytest

from gatekeeper.embedded_db import database_url, stop

SHORT_TMP = "/tmp"  # a Unix socket path must stay short


@pytest.fixture
def data_dir(tmp_path_factory):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="gk-pg-", dir=SHORT_TMP))
    yield path
    stop(path)
    shutil.rmtree(path, ignore_errors=True)


def read_in_new_process(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import psycopg; from pathlib import Path; "
            "from gatekeeper.embedded_db import database_url; "
            f"url = database_url(Path({str(data_dir)!r})); "
            "print(psycopg.connect(url).execute('SELECT value FROM kept').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_starts_is_shared_by_another_process_and_survives_a_restart(data_dir):
    url = database_url(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("18")

    # A second process (a worker beside the web server) finds the running server.
    other = read_in_new_process(data_dir)
    assert other.stdout.strip() == "still here", other.stderr

    # Stop the server, as a reboot would, and start it again: the data is still there.
    stop(data_dir)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    after_restart = read_in_new_process(data_dir)
    assert after_restart.stdout.strip() == "still here", after_restart.stderr
