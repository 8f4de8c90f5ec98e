"""A fresh clone is a development machine; production is chosen explicitly (DESIGN section 10).

The first `manage.py` run with nothing set writes `.data/local.env` (DEBUG=true and a generated
SECRET_KEY); every later process reads it, and the environment wins over it.
"""

import stat

from gatekeeper.local_env import FILE_NAME, parse
from gatekeeper.startup import EXIT_CONFIGURATION_ERROR
from tests.gatekeeper.processes import ENTRY_POINTS, bare_environment, manage, run, settings_seen


def test_the_first_command_writes_a_private_development_file_that_later_ones_reuse(tmp_path):
    debug, key, _url = settings_seen(tmp_path)

    local = tmp_path / FILE_NAME
    assert debug == "True" and len(key) >= 50
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert parse(local.read_text(), source=FILE_NAME) == {"DEBUG": "true", "SECRET_KEY": key}
    assert settings_seen(tmp_path) == ["True", key, "http://127.0.0.1:8000"]


def test_the_environment_wins_over_the_file_variable_by_variable(tmp_path):
    (tmp_path / FILE_NAME).write_text(
        "# mine\nDEBUG=true\nSECRET_KEY='k' \nexport GATEKEEPER_BASE_URL=http://file.example\n"
    )
    assert settings_seen(tmp_path) == ["True", "k", "http://file.example"]
    assert settings_seen(tmp_path, GATEKEEPER_BASE_URL="http://env.example") == [
        "True",
        "k",
        "http://env.example",
    ]


def test_an_environment_with_its_own_key_is_production_and_never_meets_the_file(tmp_path):
    (tmp_path / FILE_NAME).write_text("DEBUG=true\nGATEKEEPER_BASE_URL=http://file.example\n")
    key = "a-production-key-" + "x" * 40
    assert settings_seen(tmp_path, SECRET_KEY=key) == ["False", key, "http://127.0.0.1:8000"]


def test_debug_off_without_a_key_refuses_even_beside_a_development_file(tmp_path):
    settings_seen(tmp_path)  # writes the file

    result = manage(tmp_path, "check", DEBUG="false")

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_nothing_set_in_production_writes_no_file(tmp_path):
    for environment in ({"DEBUG": "false"}, {"SECRET_KEY": "k" * 50}):
        manage(tmp_path, "check", **environment)
    assert not (tmp_path / FILE_NAME).exists()


def test_web_and_worker_processes_read_the_file_but_never_write_it(tmp_path):
    wsgi, celery = ENTRY_POINTS["wsgi"], ENTRY_POINTS["celery"]
    for argv in (wsgi, celery):
        refused = run(argv, bare_environment(tmp_path))
        assert refused.returncode == EXIT_CONFIGURATION_ERROR, refused.stderr
        assert "SECRET_KEY is required" in refused.stderr
    assert not (tmp_path / FILE_NAME).exists()

    settings_seen(tmp_path)  # a manage.py command makes this checkout a development machine
    for argv in (wsgi, celery):
        started = run(argv, bare_environment(tmp_path))
        assert started.returncode == 0, started.stderr


def test_the_file_can_be_switched_off(tmp_path):
    result = manage(tmp_path, "check", GATEKEEPER_LOCAL_ENV="false")

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert not (tmp_path / FILE_NAME).exists()


def test_a_line_that_is_not_a_setting_is_one_line_naming_the_file_and_line(tmp_path):
    (tmp_path / FILE_NAME).write_text("DEBUG=true\nthis is not a setting\n")

    result = manage(tmp_path, "check")

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert result.stderr == (
        f"Configuration error: {tmp_path / FILE_NAME} line 2 must read NAME=value, "
        "not 'this is not a setting'\n"
    )
