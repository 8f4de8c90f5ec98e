import os
import signal
import socket
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from approvals.demo import DEMO_PASSWORD, USERS
from approvals.management.commands import demo as demo_command
from approvals.management.commands.demo import AGENT_ACCOUNT
from approvals.services.service_accounts import service_account_for_token


def test_demo_without_serving_prints_the_url_logins_and_token(db):
    out = StringIO()
    call_command("demo", "--no-serve", "--port", "8765", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8765/admin/" in text
    assert DEMO_PASSWORD in text
    for username in USERS:
        assert f"    {username} " in text
    assert "token=gk_" in text


def test_demo_run_again_says_the_token_was_shown_before(db):
    call_command("demo", "--no-serve", stdout=StringIO())
    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/admin/" in text
    assert "token=" not in text
    assert "already present kept their passwords" in text


def test_the_seeded_links_point_at_the_demo_port(db):
    from approvals.models import GateCheck

    call_command("demo", "--no-serve", "--port", "8765", stdout=StringIO())
    answer = GateCheck.objects.exclude(response__approval=None).first().response
    assert answer["approval"]["url"].startswith("http://127.0.0.1:8765/approvals/")


def test_setting_up_without_serving_starts_no_agent(db):
    from approvals.models import ServiceAccount

    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    assert "Example agent" not in out.getvalue()
    assert not ServiceAccount.objects.filter(name=AGENT_ACCOUNT).exists()


@pytest.fixture
def served(monkeypatch):
    """Run `demo` with serve() replaced: what it would start is recorded instead."""
    calls = []

    def record(server_argv, env, agent_argv, agent_env, **kwargs):
        calls.append(
            {"server": server_argv, "env": env, "agent": agent_argv, "agent_env": agent_env}
        )

    monkeypatch.setattr(demo_command, "serve", record)
    return calls


def test_serving_starts_the_server_and_the_agent_with_a_new_token_each_time(
    transactional_db, served
):
    out = StringIO()
    call_command("demo", "--port", "8766", stdout=out)
    call_command("demo", "--port", "8766", stdout=StringIO())
    first, second = served
    assert first["server"][-3:] == ["runserver", "--noreload", "127.0.0.1:8766"]
    assert first["env"]["GATEKEEPER_BASE_URL"] == "http://127.0.0.1:8766"
    assert first["agent"][1].endswith("examples/hr_onboarding_agent.py")
    assert first["agent_env"]["GATEKEEPER_URL"] == "http://127.0.0.1:8766"
    assert "GATEKEEPER_TOKEN" not in first["env"]
    # The token is not printed, and a new demo start locks out an agent left from the last.
    assert first["agent_env"]["GATEKEEPER_TOKEN"] not in out.getvalue()
    assert "Example agent" in out.getvalue()
    assert service_account_for_token(first["agent_env"]["GATEKEEPER_TOKEN"]) is None
    account = service_account_for_token(second["agent_env"]["GATEKEEPER_TOKEN"])
    assert account.name == AGENT_ACCOUNT


def test_no_agent_serves_alone(transactional_db, served):
    out = StringIO()
    call_command("demo", "--no-agent", stdout=out)
    assert served[0]["agent"] is None and served[0]["agent_env"] is None
    assert "Example agent" not in out.getvalue()


def test_a_revoked_agent_account_stays_off(transactional_db, served):
    from approvals.models import ServiceAccount

    demo_command.example_agent_token()
    ServiceAccount.objects.filter(name=AGENT_ACCOUNT).update(is_active=False)
    err = StringIO()
    call_command("demo", stdout=StringIO(), stderr=err)
    assert served[0]["agent"] is None
    assert "revoked" in err.getvalue()


# The web server and the example agent are children that never outlive the demo.

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent has not read its exit code yet


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _child(pid_file: Path, *, then: str = "time.sleep(60)") -> list[str]:
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); {then}"
    return [sys.executable, "-c", code]


def _pid(pid_file: Path, within: float = 10) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{pid_file} was not written")


@pytest.fixture
def listening():
    """A port that accepts connections, standing in for the web server's."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()


@linux
def test_when_the_server_stops_the_agent_is_stopped_too(tmp_path, listening):
    server = _child(tmp_path / "server", then="time.sleep(1); raise SystemExit(3)")
    agent = _child(tmp_path / "agent")
    code = demo_command.serve(
        server, dict(os.environ), agent, dict(os.environ), address=listening, stderr=StringIO()
    )
    assert code == 3
    assert _gone(_pid(tmp_path / "agent"), within=1)


@linux
def test_sigterm_stops_both_children_and_restores_the_handlers(tmp_path, listening):
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    code = demo_command.serve(
        _child(tmp_path / "server"),
        dict(os.environ),
        _child(tmp_path / "agent"),
        dict(os.environ),
        address=listening,
        stderr=StringIO(),
    )
    assert code is None
    assert _gone(_pid(tmp_path / "server"), within=1)
    assert _gone(_pid(tmp_path / "agent"), within=1)
    assert signal.getsignal(signal.SIGTERM) == before


@linux
def test_the_agent_starts_only_once_the_server_accepts_connections(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()
    server = _child(tmp_path / "server", then="time.sleep(1)")
    code = demo_command.serve(
        server,
        dict(os.environ),
        _child(tmp_path / "agent"),
        dict(os.environ),
        address=closed,
        stderr=StringIO(),
    )
    assert code == 0 and not (tmp_path / "agent").exists()


@linux
def test_children_die_with_the_demo_even_when_it_is_killed(tmp_path):
    script = (
        "import os, signal, sys\n"
        "import django\n"
        "django.setup()\n"
        "from approvals.management.commands.demo import _spawn\n"
        f"_spawn({_child(tmp_path / 'agent')!r}, dict(os.environ))\n"
        f"while not os.path.exists({str(tmp_path / 'agent')!r}): pass\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gatekeeper.settings"}
    demo = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert demo.returncode == -signal.SIGKILL
    assert _gone(_pid(tmp_path / "agent"))
