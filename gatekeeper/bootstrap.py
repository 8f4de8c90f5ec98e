"""Self-installation for `python3 manage.py ...`, run before Django is imported.

Any python3 may start manage.py (this machine's default is 3.11). This module finds a Python
>= 3.12, makes `.venv` with it, installs the project there when pyproject.toml changed, and
re-runs manage.py inside it. It also runs the test suite (`manage.py test`), choosing the
database before Django reads its settings. Keep it importable by old Pythons: plain syntax and
the standard library only.
"""

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_DIR = os.path.join(BASE_DIR, ".venv")
VENV_PYTHON = os.path.join(VENV_DIR, "bin", "python")
MINIMUM = (3, 12)


def _version_of(python):
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=20,
            check=True,
        ).stdout.decode()
        major, minor = out.strip().split(".")
        return (int(major), int(minor))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _candidates():
    chosen = os.environ.get("GATEKEEPER_PYTHON", "").strip()
    if chosen:
        return [chosen]
    found = [sys.executable]
    for name in ("python3.14", "python3.13", "python3.12", "python3"):
        path = shutil.which(name)
        if path:
            found.append(path)
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    for root in roots:
        if root:
            found.extend(sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))))
    found.extend(sorted(glob.glob("/usr/bin/python3.1[2-9]")))
    found.extend(sorted(glob.glob("/usr/local/bin/python3.1[2-9]")))
    return found


def find_python():
    """The newest Python >= 3.12 on this machine, or exit with a message saying where we looked."""
    best, best_version = None, None
    looked = []
    for python in _candidates():
        version = _version_of(python)
        looked.append("%s (%s)" % (python, "%d.%d" % version if version else "unusable"))
        if version and version >= MINIMUM and (best_version is None or version > best_version):
            best, best_version = python, version
    if best is None:
        sys.stderr.write(
            "Gatekeeper needs Python 3.12 or newer, and none was found.\n"
            "Looked at: %s\n"
            "Install one (for example `pyenv install 3.12`) or point GATEKEEPER_PYTHON at it.\n"
            % ", ".join(looked or ["nothing"])
        )
        sys.exit(1)
    return best


def _requirements_stamp():
    with open(os.path.join(BASE_DIR, "pyproject.toml"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _inside_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV_DIR)


def ensure_venv():
    """Make and fill .venv when needed; quick (one file read) when it is already current."""
    stamp_file = os.path.join(VENV_DIR, ".gatekeeper-installed")
    stamp = _requirements_stamp()
    current = os.path.exists(stamp_file) and open(stamp_file).read().strip() == stamp
    if current and os.path.exists(VENV_PYTHON):
        return
    if not os.path.exists(VENV_PYTHON) or (_version_of(VENV_PYTHON) or (0, 0)) < MINIMUM:
        python = find_python()
        sys.stderr.write("Creating .venv with %s\n" % python)
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        subprocess.run([python, "-m", "venv", VENV_DIR], check=True)
    sys.stderr.write("Installing Gatekeeper and its dependencies into .venv ...\n")
    pip = [VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["--editable", BASE_DIR + "[dev]"], check=True)
    with open(stamp_file, "w") as handle:
        handle.write(stamp)


def _port_answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


BROWSER_SKIP = "GATEKEEPER_BROWSER_SKIP"


def _apt(args, **kwargs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        return subprocess.run(args, env=env, **kwargs).returncode
    except OSError:
        return 127


def _ensure_chromium():
    """Install Debian's Chromium for the browser tests; None when it is there, else why not.

    One PATH lookup when it is installed. apt-get's package lists are refreshed only when they
    do not know chromium, or when they are so old that the install fails.
    """
    if shutil.which("chromium"):
        return None
    if not shutil.which("apt-get"):
        return "chromium is not installed, and there is no apt-get here to install it with"
    if os.geteuid() != 0:
        return (
            "chromium is not installed, and installing it needs root: "
            "run `sudo apt-get install chromium`, then the tests again"
        )
    sys.stderr.write("Installing chromium for the browser tests (apt-get) ...\n")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    listed = _apt(["apt-cache", "show", "chromium"], **quiet) == 0
    if not listed:
        _apt(["apt-get", "update", "-qq"])
    code = _apt(["apt-get", "install", "-y", "-qq", "chromium"])
    if code != 0 and listed:
        _apt(["apt-get", "update", "-qq"])
        code = _apt(["apt-get", "install", "-y", "-qq", "chromium"])
    if shutil.which("chromium"):
        return None
    return "`apt-get install chromium` failed (exit %d); see its output above" % code


def run_tests(args):
    """`manage.py test [pytest args]`: the whole suite, on the machine's PostgreSQL if it runs."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL") and _port_answers("127.0.0.1", 5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/gatekeeper"
    env.setdefault("DEBUG", "true")
    # The browser tests (tests/web/test_browser_*.py) drive Chromium. When it cannot be had,
    # they skip with this reason, said here and in pytest's summary.
    reason = env.get(BROWSER_SKIP, "").strip() or _ensure_chromium()
    if reason:
        env[BROWSER_SKIP] = reason
        sys.stderr.write("\n*** The browser tests will be SKIPPED: %s ***\n\n" % reason)
    # Tasks queued by the code under test go nowhere unless a test starts a real worker.
    env.setdefault("CELERY_BROKER_URL", "memory://")
    code = subprocess.run(
        [VENV_PYTHON, "-m", "pytest"] + list(args), cwd=BASE_DIR, env=env
    ).returncode
    return code


def main(argv):
    """Entry point of manage.py: returns only when running inside .venv (for Django to go on)."""
    if len(argv) > 1 and argv[1] == "demo" and not os.environ.get("DEBUG", "").strip():
        os.environ["DEBUG"] = "true"  # the demo's server serves static files, local hosts
    if os.environ.get("GATEKEEPER_NO_BOOTSTRAP") or _inside_venv():
        if len(argv) > 1 and argv[1] == "test" and _inside_venv():
            sys.exit(run_tests(argv[2:]))
        return
    ensure_venv()
    os.execv(VENV_PYTHON, [VENV_PYTHON] + argv)
