import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from gatekeeper.env import parse_database_url

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RoleDatabase:
    """A database set up as docs/deployment.md says: URLs for its owner, its app role, and
    the test suite's superuser."""

    owner_url: str
    app_url: str
    superuser_url: str
    owner: str
    app: str


def _server() -> tuple[dict, str]:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatekeeper")
    server = parse_database_url("DATABASE_URL", url)
    return server, f"{server['HOST'] or '127.0.0.1'}:{server['PORT'] or 5432}"


def _documented_sql() -> str:
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text[text.index("### Database roles") :]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="session")
def role_database() -> RoleDatabase:
    """Roles and a database made by running the documented SQL, migrated by the owner role.

    Names are unique to this run (roles belong to the whole server, which other runs share),
    and everything is dropped afterwards.
    """
    server, address = _server()
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    owner, app, name = f"gk_owner_{suffix}", f"gk_app_{suffix}", f"gk_roles_{suffix}"
    owner_password, app_password = secrets.token_hex(12), secrets.token_hex(12)
    sql = (
        _documented_sql()
        .replace("gatekeeper_owner", owner)
        .replace("gatekeeper_app", app)
        .replace("'owner-password'", f"'{owner_password}'")
        .replace("'app-password'", f"'{app_password}'")
        .replace("DATABASE gatekeeper", f"DATABASE {name}")
    )
    on_server, _, in_database = sql.partition("\\connect gatekeeper\n")
    superuser = {
        "host": server["HOST"] or "127.0.0.1",
        "port": server["PORT"] or 5432,
        "user": server["USER"],
        "password": server["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **superuser) as connection:
        for statement in filter(str.strip, on_server.split(";")):
            connection.execute(statement)
    try:
        with psycopg.connect(dbname=name, autocommit=True, **superuser) as connection:
            for statement in filter(str.strip, in_database.split(";")):
                connection.execute(statement)
        owner_url = f"postgres://{owner}:{owner_password}@{address}/{name}"
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": owner_url, "DEBUG": "true",
                 "GATEKEEPER_NO_BOOTSTRAP": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        credentials = server["USER"] + (f":{server['PASSWORD']}" if server["PASSWORD"] else "")
        yield RoleDatabase(
            owner_url=owner_url,
            app_url=f"postgres://{app}:{app_password}@{address}/{name}",
            superuser_url=f"postgres://{credentials}@{address}/{name}",
            owner=owner,
            app=app,
        )
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **superuser) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"DROP ROLE IF EXISTS {app}")
            connection.execute(f"DROP ROLE IF EXISTS {owner}")
