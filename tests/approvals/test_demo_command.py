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

    def record(server_argv, env, agent_argv, agent_env, *, background, **kwargs):
        calls.append(
            {
                "server": server_argv,
                "env": env,
                "agent": agent_argv,
                "agent_env": agent_env,
                "background": background,
            }
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
    assert first["server"][1:4] == ["-m", "uvicorn", "gatekeeper.asgi:application"]
    assert first["server"][4:8] == ["--host", "127.0.0.1", "--port", "8766"]
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


def test_no_agent_serves_without_it(transactional_db, served):
    out = StringIO()
    call_command("demo", "--no-agent", stdout=out)
    assert served[0]["agent"] is None and served[0]["agent_env"] is None
    assert "Example agent" not in out.getvalue()
    assert set(served[0]["background"]) == {"Celery worker", "Celery beat"}


def test_serving_runs_a_celery_worker_and_one_beat_on_the_default_broker(
    transactional_db, served, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    # What settings.py makes of an unset CELERY_BROKER_URL (the tests run on memory://).
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(settings.BASE_DIR / ".data" / "celery" / "queue")
    }
    out = StringIO()
    call_command("demo", "--no-agent", stdout=out)
    background = served[0]["background"]
    worker, beat = background["Celery worker"], background["Celery beat"]
    schedule = tmp_path / "celery" / "beat-schedule"
    assert " ".join(worker[1:]) == (
        "-m celery -A gatekeeper.celery worker --pool=solo --loglevel=INFO"
    )
    assert " ".join(beat[1:]) == (
        f"-m celery -A gatekeeper.celery beat --schedule {schedule} --loglevel=INFO"
    )
    assert schedule.parent.is_dir()
    text = out.getvalue()
    assert "a Celery worker and beat send email" in text
    assert "Broker:     a folder queue in .data/celery/queue (no server)" in text


def test_the_banner_names_a_broker_from_the_environment_without_its_password(
    transactional_db, served, settings
):
    settings.CELERY_BROKER_URL = "redis://:s3cret@redis.example.com:6379/0"
    out = StringIO()
    call_command("demo", "--no-agent", stdout=out)
    assert "Broker:     redis://:**@redis.example.com:6379/0" in out.getvalue()
    assert "s3cret" not in out.getvalue()


def test_no_worker_serves_without_celery_and_points_at_sweep(transactional_db, served):
    out = StringIO()
    call_command("demo", "--no-worker", "--no-agent", stdout=out)
    assert served[0]["background"] == {}
    assert "Background: off" in out.getvalue()
    assert "python3 manage.py sweep" in out.getvalue()


def test_the_banner_says_where_email_goes(db, settings, tmp_path):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path / "outgoing")},
        }
    }
    assert (
        demo_command.email_destination()
        == f"written to files in {tmp_path / 'outgoing'}, one per message"
    )
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "smtp.example.com", "port": 587},
        }
    }
    assert demo_command.email_destination() == "sent through SMTP at smtp.example.com:587"


def test_a_revoked_agent_account_stays_off(transactional_db, served):
    from approvals.models import ServiceAccount

    demo_command.example_agent_token()
    ServiceAccount.objects.filter(name=AGENT_ACCOUNT).update(is_active=False)
    err = StringIO()
    call_command("demo", stdout=StringIO(), stderr=err)
    assert served[0]["agent"] is None
    assert "revoked" in err.getvalue()


# The web server, the Celery worker and beat, and the example agent are children that never
# outlive the demo.

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


def _background(tmp_path: Path, **then: str) -> dict[str, list[str]]:
    """Stand-ins for the Celery worker and beat, writing their pids to tmp_path/worker, /beat."""
    return {
        f"Celery {name}": _child(tmp_path / name, **({"then": then[name]} if name in then else {}))
        for name in ("worker", "beat")
    }


@linux
def test_when_the_server_stops_the_other_children_are_stopped_too(tmp_path, listening):
    server = _child(tmp_path / "server", then="time.sleep(1); raise SystemExit(3)")
    agent = _child(tmp_path / "agent")
    code = demo_command.serve(
        server,
        dict(os.environ),
        agent,
        dict(os.environ),
        address=listening,
        stderr=StringIO(),
        background=_background(tmp_path),
    )
    assert code == 3
    for name in ("agent", "worker", "beat"):
        assert _gone(_pid(tmp_path / name)), name


@linux
def test_sigterm_stops_every_child_and_restores_the_handlers(tmp_path, listening):
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    code = demo_command.serve(
        _child(tmp_path / "server"),
        dict(os.environ),
        _child(tmp_path / "agent"),
        dict(os.environ),
        address=listening,
        stderr=StringIO(),
        background=_background(tmp_path),
    )
    assert code is None
    for name in ("server", "agent", "worker", "beat"):
        assert _gone(_pid(tmp_path / name)), name
    assert signal.getsignal(signal.SIGTERM) == before


@linux
def test_a_child_that_will_not_stop_is_killed(tmp_path, listening, monkeypatch):
    monkeypatch.setattr(demo_command, "STOP_SECONDS", 0.5)
    stubborn = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    demo_command.serve(
        _child(tmp_path / "server"),
        dict(os.environ),
        None,
        None,
        address=listening,
        stderr=StringIO(),
        background=_background(tmp_path, worker=stubborn),
    )
    # Killed after STOP_SECONDS, not left to sleep out its 60 s (a generous bound: busy cores).
    assert time.monotonic() - started < 30
    assert _gone(_pid(tmp_path / "worker"))
    assert _gone(_pid(tmp_path / "beat"))


@linux
def test_a_background_child_that_stops_is_reported_and_the_server_keeps_serving(
    tmp_path, listening
):
    err = StringIO()
    code = demo_command.serve(
        _child(tmp_path / "server", then="time.sleep(2)"),
        dict(os.environ),
        None,
        None,
        address=listening,
        stderr=err,
        background=_background(tmp_path, beat="raise SystemExit(2)"),
    )
    assert code == 0  # the server ran its full two seconds
    assert err.getvalue() == "The Celery beat stopped (exit code 2)."
    assert _gone(_pid(tmp_path / "worker"))


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


@linux
def test_the_real_worker_and_beat_start_and_stop_with_the_demo(tmp_path, listening, settings):
    """The Celery command lines as the demo runs them, on an in-memory broker of their own."""
    settings.DATA_DIR = tmp_path
    env = {**os.environ, "CELERY_BROKER_URL": "memory://", "DEBUG": "true"}
    schedule = tmp_path / "celery" / "beat-schedule"
    seen: dict[int, str] = {}
    stopped_at: list[float] = []

    def stop_once_both_run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(schedule.parent.glob("beat-schedule*")):
            time.sleep(0.2)
        time.sleep(2)  # the worker imports Django as beat does; give it the same head start
        seen.update(_children_of(os.getpid()))
        stopped_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_once_both_run, daemon=True).start()
    code = demo_command.serve(
        _child(tmp_path / "server"),
        env,
        None,
        None,
        address=listening,
        stderr=StringIO(),
        background=demo_command.celery_commands(),
    )
    assert code is None
    # argv: python -m celery -A gatekeeper.celery <worker|beat> ...
    celery = {pid: argv for pid, argv in seen.items() if "gatekeeper.celery" in argv}
    assert sorted(argv.split()[5] for argv in celery.values()) == ["beat", "worker"], seen
    # Only the demo's own children: earlier tests in this process may have left theirs (the
    # browser tests' Playwright driver lives for the whole session).
    assert not any(_alive(pid) for pid in celery)
    # It returned once both had ended: at STOP_SECONDS, killed at the latest. The bound only
    # catches a demo left waiting on a child (busy cores make any closer bound flaky).
    assert time.monotonic() - stopped_at[0] < demo_command.STOP_SECONDS + 30


def _children_of(parent: int) -> dict[int, str]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            children[int(stat.parent.name)] = command
    return children


def test_the_example_agent_gets_its_token_and_not_the_server_s_secret_key():
    _argv, env = demo_command.agent_command(
        "http://127.0.0.1:8000", "gk_t", {"SECRET_KEY": "k", "PATH": "/b"}
    )

    assert env["GATEKEEPER_TOKEN"] == "gk_t" and env["PATH"] == "/b"
    assert "SECRET_KEY" not in env
