"""A bad config file stops the gateway with one line naming the problem, exit status 2."""

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
[gatekeeper]
url = "http://127.0.0.1:8000"
token = "gk_x"
workflow = "hr-onboarding"

[[upstream]]
name = "hr"
command = ["python3", "server.py"]
"""


def gateway(config_text: str | None, tmp_path, **env) -> subprocess.CompletedProcess:
    path = tmp_path / "gateway.toml"
    if config_text is not None:
        path.write_text(config_text)
    return subprocess.run(
        [sys.executable, "-m", "gatekeeper_client.mcp", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "gateway.toml: no such file"),
        ("[gatekeeper\nurl=", "gateway.toml: not valid TOML"),
        (GOOD.replace('workflow = "hr-onboarding"', ""), "gatekeeper.workflow is required"),
        (
            GOOD.replace('token = "gk_x"', ""),
            "gatekeeper.token is not set: give it, or set $GATEKEEPER_TOKEN",
        ),
        (GOOD.replace("http://127.0.0.1:8000", "ftp://x"), "gatekeeper.url must be an http(s) URL"),
        (
            GOOD + 'url = "http://x/mcp"\n',
            "upstream 'hr' needs exactly one of command (stdio) or url",
        ),
        (GOOD.replace('name = "hr"', 'name = "h r"'), "upstream #1.name must be 1 to 64 of"),
        (GOOD.replace("[[upstream]]", "[[upstreams]]"), "upstreams is not a known key"),
        (
            GOOD.replace('"python3", "server.py"', ""),
            "upstream 'hr'.command must be a non-empty list",
        ),
        (
            GOOD + '[tools."iam.grant"]\nrisk = 2\n',
            "tools.'iam.grant'.risk must be a number from 0 to 1",
        ),
        (
            GOOD.replace('hr-onboarding"', 'hr-onboarding"\nthread_id = "a b"'),
            "gatekeeper.thread_id must be",
        ),
        (GOOD.split("[[upstream]]")[0], "[[upstream]] is required"),
    ],
)
def test_a_bad_config_is_one_clear_line_and_exit_status_2(tmp_path, text, says):
    run = gateway(text, tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("gatekeeper-mcp: ") and str(tmp_path) in run.stderr
    assert says in run.stderr, run.stderr


def test_the_token_may_come_from_the_environment(tmp_path):
    config = GOOD.replace('token = "gk_x"', 'token_env = "HR_GATEWAY_TOKEN"')
    config = config.replace('"python3", "server.py"', '"/nonexistent/server"')
    run = gateway(config, tmp_path, HR_GATEWAY_TOKEN="gk_y")
    # The config is good: what stops it now is the upstream that cannot start, said in a line.
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("gatekeeper-mcp: ")
    assert "nonexistent" in run.stderr


def test_the_gateway_names_the_extra_it_needs(agent_python):
    from tests.client.conftest import run_as_agent

    out = run_as_agent(
        agent_python,
        "try:\n    import gatekeeper_client.mcp\nexcept ImportError as error:\n    print(error)",
    )
    assert out == 'the MCP gateway needs the MCP SDK: pip install "gatekeeper-client[mcp]"'


def test_the_console_command_is_the_same_gateway(tmp_path):
    command = Path(sys.executable).parent / "gatekeeper-mcp"
    run = subprocess.run(
        [command, "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stderr) == (
        2,
        f"gatekeeper-mcp: {tmp_path}/none.toml: no such file\n",
    )


def test_a_port_in_use_is_one_line_before_any_upstream_starts(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "gateway.toml"
        path.write_text(GOOD.replace('"python3", "server.py"', '"/nonexistent/server"'))
        run = subprocess.run(
            [sys.executable, "-m", "gatekeeper_client.mcp", "--config", str(path)]
            + ["--http", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 1
    assert run.stderr == (
        f"gatekeeper-mcp: OSError: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
