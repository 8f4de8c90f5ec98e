"""What every entry point (manage.py, Celery, WSGI, ASGI) does before anything else.

It reads the development machine's local file (gatekeeper.local_env) and loads the settings, so
a bad variable stops the process with one line on stderr that names it, not a traceback.
"""

import os
import sys

from gatekeeper import local_env
from gatekeeper.env import ConfigurationError

# gunicorn's code for "App failed to load": its master stops instead of forking new workers
# that would fail the same way; any other caller only needs it to be non-zero.
EXIT_CONFIGURATION_ERROR = 4


def start(*, create_local_env: bool = False) -> None:
    """Configure this process, or exit with the one line that says what is wrong."""
    from django.conf import settings

    if settings.configured:  # e.g. the Celery app imported by a running Django or test harness
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatekeeper.settings")
    try:
        local_env.load(create_missing=create_local_env)
        settings.INSTALLED_APPS  # noqa: B018 (imports the settings module, which checks them)
    except ConfigurationError as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        sys.stderr.flush()
        sys.exit(EXIT_CONFIGURATION_ERROR)
