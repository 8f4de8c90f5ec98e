"""A development machine's own settings: `.data/local.env`, read before Django starts.

A fresh clone has no environment, and with DEBUG off by default every command would stop for a
missing SECRET_KEY. So the first `manage.py` run on such a machine writes this file (DEBUG=true
and a generated SECRET_KEY); `manage.py`, Celery and the WSGI/ASGI entries read it, and the
process environment always wins over it, variable by variable.

Production is chosen explicitly and never meets the file: an environment that sets SECRET_KEY,
or says DEBUG is off, is not a development machine, so the file is neither read nor written.
Only manage.py writes it: a web or worker process started with nothing set still refuses to
start. GATEKEEPER_LOCAL_ENV=false switches the file off (the test suite does, so that no
developer's file reaches the processes it starts).
"""

import os
import re
import secrets
from pathlib import Path

from gatekeeper.env import ConfigurationError, env_bool, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
FILE_NAME = "local.env"
_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=(.*)")
_OFF = {"0", "false", "no"}

TEMPLATE = """\
# Written by `python3 manage.py` on its first run: this checkout is a development machine.
# manage.py, Celery and the web server read this file; a variable set in the environment wins.
# Production never reads it: set DEBUG=false and a SECRET_KEY there (see .env.example).
# Add any variable of .env.example here, e.g. DATABASE_URL=postgres://127.0.0.1/gatekeeper
DEBUG=true
SECRET_KEY={secret_key}
"""


def path() -> Path:
    """Where the file lives: beside the embedded database it belongs with."""
    return Path(env_str("GATEKEEPER_DATA_DIR") or BASE_DIR / ".data") / FILE_NAME


def applies() -> bool:
    """Whether this process is on a development machine the file configures."""
    if not env_bool("GATEKEEPER_LOCAL_ENV", True):
        return False
    if env_str("SECRET_KEY") is not None:
        return False
    debug = env_str("DEBUG")
    return debug is None or debug.lower() not in _OFF


def parse(text: str, *, source: str) -> dict[str, str]:
    """NAME=value lines; blank lines and `#` comments are skipped, quotes around a value dropped."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line.removeprefix("export ").strip())
        if match is None:
            raise ConfigurationError(f"{source} line {number} must read NAME=value, not {line!r}")
        name, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def create(target: Path) -> None:
    """Write a development file with a fresh key, unless another process just did."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as handle:
        handle.write(TEMPLATE.format(secret_key=secrets.token_urlsafe(50)))


def load(*, create_missing: bool = False) -> Path | None:
    """Fill the variables the environment leaves unset from the file; the file read, or None."""
    if not applies():
        return None
    target = path()
    if create_missing and not target.exists():
        create(target)
    try:
        text = target.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigurationError(f"{target} cannot be read: {error.strerror}") from None
    for name, value in parse(text, source=str(target)).items():
        if env_str(name) is None:  # the environment wins, and an empty value there means unset
            os.environ[name] = value
    return target
