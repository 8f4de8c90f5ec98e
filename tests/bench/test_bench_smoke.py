"""bench/run starts and prints its first figure (issue 8). CI never runs the benchmarks
themselves; this runs `bench/run --smoke`: tiny sizes, a second or so per figure, its own
database on the PostgreSQL at 127.0.0.1:5432, dropped at the end."""

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

BASE = Path(__file__).resolve().parents[2]
FIGURE = re.compile(r"^(ratio|limit) [a-z0-9_]+ -?[0-9.]+ [0-9.]+$")


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _postgres_answers(), reason="bench/run needs PostgreSQL on 127.0.0.1:5432")
def test_bench_run_smoke_prints_its_first_figure():
    result = subprocess.run(
        [str(BASE / "bench" / "run"), "--smoke", "--db", f"gk_bench_smoke_{os.getpid()}"],
        cwd=BASE,
        capture_output=True,
        text=True,
        timeout=150,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"no output; exit {result.returncode}; stderr:\n{result.stderr[-3000:]}"
    assert FIGURE.match(lines[0]), (
        f"first line is not a figure: {lines[0]!r}\n{result.stderr[-3000:]}"
    )
