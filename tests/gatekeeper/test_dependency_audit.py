"""pip-audit over everything installed in the virtualenv: a known vulnerability fails the suite.

pip-audit asks PyPI's JSON API which advisories (from the PyPA advisory database) affect each
installed version. When that service cannot be reached, or knows none of the installed
versions (a private mirror's builds, say), nothing was audited: the test then skips, saying
why, rather than pass having checked nothing.
"""

import json
import subprocess
import sys

import pytest

UNREACHABLE = (
    "requests.exceptions.",
    "urllib3.exceptions.",
    "ConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
)


def test_no_installed_dependency_has_a_known_vulnerability():
    try:
        result = subprocess.run(
            # The project itself is installed editable and is not on PyPI: audit what it uses.
            [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format", "json"]
            + ["--skip-editable"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit skipped: the advisory service did not answer within 10 minutes")
    try:
        report = json.loads(result.stdout)
    except ValueError:
        if any(marker in result.stderr for marker in UNREACHABLE):
            last = result.stderr.strip().splitlines()[-1]
            pytest.skip(f"pip-audit skipped: the advisory service cannot be reached ({last})")
        pytest.fail(f"pip-audit failed (exit {result.returncode}):\n{result.stderr[-3000:]}")

    # --skip-editable still lists the project itself, as skipped.
    dependencies = [
        dep for dep in report["dependencies"] if "editable" not in dep.get("skip_reason", "")
    ]
    vulnerable = [
        f"{dep['name']} {dep['version']}: "
        + ", ".join(
            f"{v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release yet'})"
            for v in dep["vulns"]
        )
        for dep in dependencies
        if dep.get("vulns")
    ]
    assert not vulnerable, "known vulnerabilities:\n" + "\n".join(vulnerable)

    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if not audited:
        reasons = sorted({dep["skip_reason"].split(":")[0] for dep in dependencies})
        pytest.skip(
            f"pip-audit skipped: none of the {len(dependencies)} installed dependencies could be "
            f"audited ({'; '.join(reasons)}): the PyPI reached from here does not answer "
            "pip-audit's per-version questions"
        )
