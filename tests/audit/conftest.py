import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.background.processes import BASE_DIR, WebNode, stop_all
from tests.private_postgres import PrivatePostgres

# Nothing reaches the disk unless a commit asks for it: the WAL writer wakes every 10 s and
# never for a number of pages, the WAL buffers hold what a test writes (nothing is written out
# to make room), and the background writer writes no data page (each would flush WAL first).
SLOW_WAL = {
    "wal_writer_delay": "'10s'",
    "wal_writer_flush_after": "'1GB'",
    "wal_buffers": "'64MB'",
    "bgwriter_lru_maxpages": "0",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
}
ALLOWED_TOOL = "durability.probe"


@dataclass
class PrivateGatekeeper:
    server: PrivatePostgres
    node: WebNode
    token: str
    env: dict

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def connect(self):
        return self.server.connect("gatekeeper")


@pytest.fixture(scope="session")
def gatekeeper_on_slow_wal(tmp_path_factory):
    """Gatekeeper migrated onto a private PostgreSQL whose WAL reaches the disk only when a
    commit waits for it, served by a gunicorn node; a policy allows ALLOWED_TOOL."""
    server = PrivatePostgres(SLOW_WAL)
    node = None
    try:
        server.start()
        with server.connect() as admin:
            admin.execute("CREATE DATABASE gatekeeper")
        env = {
            **os.environ,
            "DATABASE_URL": server.url("gatekeeper"),
            "DATABASE_CONN_MAX_AGE": "0",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        gatekeeper = PrivateGatekeeper(server, None, "", env)
        policies = tmp_path_factory.mktemp("policies") / "allow.json"
        policies.write_text(
            json.dumps(
                [
                    {
                        "name": "probe",
                        "priority": 1,
                        "match": {"tool": ALLOWED_TOOL},
                        "effect": "allow",
                    }
                ]
            )
        )
        for command in (
            ["migrate", "-v0"],
            ["import_policies", str(policies)],
            ["create_service_account", "agent"],
        ):
            done = gatekeeper.manage(*command)
            assert done.returncode == 0, done.stdout + done.stderr
        gatekeeper.token = done.stdout.split("token=")[1].split()[0]
        node = WebNode("web", env, tmp_path_factory.mktemp("node"), threads=8)
        gatekeeper.node = node
        node.wait_ready()
        yield gatekeeper
    finally:
        if node is not None:
            stop_all([node])
        server.remove()


def allowed_body(key: str, step: int) -> dict:
    """A gate request the private Gatekeeper's policy allows; `key` names its thread."""
    return {
        "idempotency_key": f"{key}:{step}",
        "execution": {"thread_id": key, "workflow": "durability"},
        "step": {"index": step, "name": "probe"},
        "action": {"tool": ALLOWED_TOOL, "args": {"n": step}, "side_effect": "not_started"},
    }
