"""Environments of their own for frameworks whose pins conflict with the other extras
(`.venv-crewai`, `.venv-airflow`), built once and reused.

On a fresh machine two xdist workers ask for the same one at once (the demo examples' test on
one, the framework's own tests on the other): one builds it while the others wait on a lock,
then find it built. Without the lock, the second would delete the first's half-built venv.
"""

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def _held(venv: Path) -> Iterator[None]:
    with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def built_once(venv: Path, stamp: str, build: Callable[[], None]) -> Path:
    """The venv's python, after `build()` ran unless the venv was built for `stamp` already."""
    python = venv / "bin" / "python"
    stamp_file = venv / ".gatekeeper-installed"

    def current() -> bool:
        return python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp

    if current():
        return python
    with _held(venv):
        if not current():  # another worker may have built it while this one waited
            build()
            stamp_file.write_text(stamp)
    return python
