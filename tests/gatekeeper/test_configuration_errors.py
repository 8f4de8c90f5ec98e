"""A bad variable stops every entry point with one line that names it, never a traceback."""

import pytest

from gatekeeper.startup import EXIT_CONFIGURATION_ERROR
from tests.gatekeeper.processes import ENTRY_POINTS, bare_environment, run


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EMAIL_PORT", "x", "EMAIL_PORT must be a whole number, not 'x'"),
        ("DEBUG", "perhaps", "DEBUG must be one of 1 0 true false yes no, not 'perhaps'"),
        ("DATABASE_URL", "mysql://db/gk", "DATABASE_URL must be a postgres:// URL"),
    ],
)
def test_a_bad_variable_is_one_line_on_stderr(tmp_path, entry, variable, value, message):
    env = bare_environment(tmp_path, **{"DEBUG": "true", variable: value})
    result = run(ENTRY_POINTS[entry], env)

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    [line] = result.stderr.splitlines()
    assert line.startswith("Configuration error: ") and message in line
    assert result.stdout == ""


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_production_without_a_key_says_so_in_one_line(tmp_path, entry):
    result = run(ENTRY_POINTS[entry], bare_environment(tmp_path, DEBUG="false"))

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert result.stderr == (
        "Configuration error: SECRET_KEY is required when DEBUG is off; "
        "for development set DEBUG=true\n"
    )


def test_an_error_that_is_not_configuration_keeps_its_traceback(tmp_path):
    # Only settings the environment got wrong are shortened; a bug is still a bug.
    env = bare_environment(tmp_path, DEBUG="true", DJANGO_SETTINGS_MODULE="no_such_settings")
    result = run(ENTRY_POINTS["wsgi"], env)

    assert result.returncode == 1
    assert "Traceback" in result.stderr and "no_such_settings" in result.stderr
