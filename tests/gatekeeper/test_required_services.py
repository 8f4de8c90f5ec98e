"""A missing service skips the tests that need it, saying why, and fails them under CI=true.

Each case runs the probe tests (each needs only its service) in a fresh pytest, with the
services made unreachable: Redis at a port that refuses connections, Chromium as the test
command reports it when it cannot install it.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBES = ["tests/background/test_redis_broker.py", "tests/web/test_browser_chromium.py"]
REASONS = ["these tests need Redis at", "the browser tests cannot run: no chromium here"]


@pytest.fixture
def run_probes():
    def run(*, ci: bool) -> tuple[subprocess.CompletedProcess, str]:
        with socket.socket() as held:  # bound, never listening: connections are refused
            held.bind(("127.0.0.1", 0))
            env = {
                **os.environ,
                "GATEKEEPER_TEST_REDIS_URL": f"redis://127.0.0.1:{held.getsockname()[1]}/0",
                "GATEKEEPER_BROWSER_SKIP": "no chromium here",
            }
            env.pop("CI", None)
            if ci:
                env["CI"] = "true"
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *PROBES],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        return result, result.stdout.strip().splitlines()[-1]

    return run


def test_under_ci_a_missing_service_fails_its_tests(run_probes):
    result, summary = run_probes(ci=True)

    assert result.returncode == 1 and "2 errors" in summary, result.stdout
    for reason in REASONS:
        assert reason in result.stdout
    assert result.stdout.count("CI is set: a missing service fails the run") >= 2


def test_elsewhere_a_missing_service_skips_its_tests_saying_why(run_probes):
    result, summary = run_probes(ci=False)

    assert result.returncode == 0 and "2 skipped" in summary, result.stdout
    for reason in REASONS:
        assert reason in result.stdout
    assert "CI is set" not in result.stdout
