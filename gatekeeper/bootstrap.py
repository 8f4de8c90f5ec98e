"""Self-installation for `python3 manage.py ...`, run before Django is imported.

Any python3 may start manage.py (this machine's default is 3.11). This module finds a Python
>= 3.12, makes `.venv` with it, installs the project there with the client distribution in
`client/` (so tests, examples and the demo's agent use `gatekeeper_client` as an agent does)
when either pyproject.toml changed, and re-runs manage.py inside it. It also runs the test
suite (`manage.py test`), choosing the database before Django reads its settings.
Keep it importable by old Pythons: plain syntax and the standard library only.
"""

import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_DIR = os.path.join(BASE_DIR, ".venv")
VENV_PYTHON = os.path.join(VENV_DIR, "bin", "python")
CLIENT_DIR = os.path.join(BASE_DIR, "client")
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
    digest = hashlib.sha256()
    for folder in (BASE_DIR, CLIENT_DIR):
        with open(os.path.join(folder, "pyproject.toml"), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


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
    editables = ["--editable", BASE_DIR + "[dev]", "--editable", CLIENT_DIR + "[all]"]
    subprocess.run(pip + editables, check=True)
    with open(stamp_file, "w") as handle:
        handle.write(stamp)


def _port_answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


BROWSER_SKIP = "GATEKEEPER_BROWSER_SKIP"
TEST_REDIS = "GATEKEEPER_TEST_REDIS_URL"
# The machine's Redis, when one answers; tests.background.conftest uses the same database.
DEFAULT_REDIS = ("127.0.0.1", 6379)
DEFAULT_REDIS_DB = 7


def _apt(args, **kwargs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        return subprocess.run(args, env=env, **kwargs).returncode
    except OSError:
        return 127


def _ensure_installed(command, package, purpose):
    """Install a Debian package for the tests; None when `command` is there, else why not.

    One PATH lookup when it is installed. apt-get's package lists are refreshed only when they
    do not know the package, or when they are so old that the install fails.
    """
    if shutil.which(command):
        return None
    if not shutil.which("apt-get"):
        return "%s is not installed, and there is no apt-get here to install it with" % command
    if os.geteuid() != 0:
        return (
            "%s is not installed, and installing it needs root: "
            "run `sudo apt-get install %s`, then the tests again" % (command, package)
        )
    sys.stderr.write("Installing %s for %s (apt-get) ...\n" % (package, purpose))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    listed = _apt(["apt-cache", "show", package], **quiet) == 0
    if not listed:
        _apt(["apt-get", "update", "-qq"])
    code = _apt(["apt-get", "install", "-y", "-qq", package])
    if code != 0 and listed:
        _apt(["apt-get", "update", "-qq"])
        code = _apt(["apt-get", "install", "-y", "-qq", package])
    if shutil.which(command):
        return None
    return "`apt-get install %s` failed (exit %d); see its output above" % (package, code)


def _redis_answers(host, port):
    """True when a Redis server there answers PING without a password, as the tests use it."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.settimeout(2)
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test run's own: daemonized on 127.0.0.1, nothing kept on disk."""

    def __init__(self, port=None):
        self.port = port or _free_port()
        self.directory = tempfile.mkdtemp(prefix="gatekeeper-redis-")
        self.pid_file = os.path.join(self.directory, "redis.pid")
        self.url = "redis://127.0.0.1:%d/%d" % (self.port, DEFAULT_REDIS_DB)

    def start(self, timeout=20):
        """Start it and wait until it answers; None when it does, else why not."""
        # Options on the command line: no config file, so nothing of the machine's applies.
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--daemonize", "yes", "--pidfile", self.pid_file, "--dir", self.directory]
        command += ["--logfile", os.path.join(self.directory, "redis.log")]
        command += ["--save", "", "--appendonly", "no"]
        try:
            code = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        except OSError as error:
            return "redis-server could not be run (%s)" % error
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _redis_answers("127.0.0.1", self.port):
                return None
            time.sleep(0.05)
        self.stop()
        return "redis-server (exit %d) did not answer on port %d within %d s" % (
            code,
            self.port,
            timeout,
        )

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout=10):
        """End the server this run started (by its pid, never by name) and remove its folder."""
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def ensure_redis(env, default=DEFAULT_REDIS):
    """Point env's GATEKEEPER_TEST_REDIS_URL at a Redis that answers.

    A URL already set is the caller's choice and left alone; else the Redis at `default` when
    it answers; else a private server is started, installing Debian's redis-server when it is
    missing. Returns (the server started, to stop at the end, or None; why there is no Redis,
    or None).
    """
    if env.get(TEST_REDIS, "").strip():
        return None, None
    host, port = default
    if _redis_answers(host, port):
        env[TEST_REDIS] = "redis://%s:%d/%d" % (host, port, DEFAULT_REDIS_DB)
        return None, None
    reason = _ensure_installed("redis-server", "redis-server", "the background tests")
    if reason:
        return None, reason
    server = PrivateRedis()
    reason = server.start()
    if reason:
        return None, reason
    env[TEST_REDIS] = server.url
    return server, None


def _missing_means(env):
    # Under CI a missing service fails its tests (tests/required.py); elsewhere they skip.
    if env.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return "FAIL (CI is set)"
    return "be SKIPPED"


TEST_WORKERS = "GATEKEEPER_TEST_WORKERS"
MAX_TEST_WORKERS = 8
# Options that choose pytest-xdist's workers themselves, or that need the tests in this process.
_XDIST_CHOSEN = ("-n", "--numprocesses", "--dist", "-d", "--tx")
_ONE_PROCESS = ("--pdb", "--trace", "-s", "--capture=no", "--collect-only", "--co", "no:xdist")


def _selected_paths(args):
    """The test files and folders named on the command line (node ids count as their file)."""
    paths = set()
    for arg in args:
        if arg.startswith("-"):
            continue
        path = os.path.join(BASE_DIR, arg.split("::")[0])
        if os.path.exists(path):
            paths.add(os.path.normpath(path))
    return paths


def xdist_workers(args, env):
    """How many pytest-xdist workers run the tests: one per usable core (at most 8) for the
    suite, a folder or several files; 1 (no xdist) for one file, where starting workers costs
    more than it saves, and when an option needs one process. GATEKEEPER_TEST_WORKERS decides
    when set (0 or 1: no xdist)."""
    chosen = env.get(TEST_WORKERS, "").strip()
    if chosen:
        return int(chosen)
    for arg in args:
        if arg in _XDIST_CHOSEN or arg.startswith(("--numprocesses=", "--dist=", "-n")):
            return 1
        if arg in _ONE_PROCESS:
            return 1
    paths = _selected_paths(args)
    if len(paths) == 1 and not os.path.isdir(next(iter(paths))):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_TEST_WORKERS))


def run_tests(args):
    """`manage.py test [pytest args]`: the whole suite, on the machine's PostgreSQL if it runs."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        if _port_answers("127.0.0.1", 5432):
            env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/gatekeeper"
        else:
            # Still a real PostgreSQL, so nothing is skipped; said, as CI expects the one above.
            sys.stderr.write(
                "Nothing answers at 127.0.0.1:5432: the tests run on the embedded PostgreSQL\n"
            )
    env.setdefault("DEBUG", "true")
    # The browser tests (tests/web/test_browser_*.py) drive Chromium. When it cannot be had,
    # they skip (fail, under CI) with this reason, said here and in pytest's summary.
    reason = env.get(BROWSER_SKIP, "").strip() or _ensure_installed(
        "chromium", "chromium", "the browser tests"
    )
    if reason:
        env[BROWSER_SKIP] = reason
        sys.stderr.write(
            "\n*** The browser tests will %s: %s ***\n\n" % (_missing_means(env), reason)
        )
    # The real-worker tests (tests/background) need a Redis broker.
    redis_server, reason = ensure_redis(env)
    if reason:
        sys.stderr.write(
            "\n*** The real-worker tests will %s: %s ***\n\n" % (_missing_means(env), reason)
        )
    elif redis_server:
        sys.stderr.write("Started a private Redis for the tests at %s\n" % redis_server.url)
    # Tasks queued by the code under test go nowhere unless a test starts a real worker.
    env.setdefault("CELERY_BROKER_URL", "memory://")
    args = list(args)
    workers = xdist_workers(args, env)
    if workers > 1:
        # Each worker has its own test database (pytest-django's _gwN suffix) and Redis
        # database (tests.background.conftest); groups keep a shared harness on one worker.
        args = ["--numprocesses", str(workers), "--dist", "loadgroup"] + args
    try:
        command = [VENV_PYTHON, "-m", "pytest"] + args
        return subprocess.run(command, cwd=BASE_DIR, env=env).returncode
    finally:
        if redis_server:
            redis_server.stop()


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
