"""Production settings plus the floor view's URL: what the bench's gunicorn servers run.

Only bench/run points DJANGO_SETTINGS_MODULE here, so the floor is never reachable from a server
started with gatekeeper.settings. Everything else (DEBUG off, SECRET_KEY, hosts, middleware,
database pooling) is gatekeeper.settings as the environment makes it.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from gatekeeper.settings import *  # noqa: F403

if os.environ.get("GATEKEEPER_BENCH_FLOOR") != "1":
    raise ImproperlyConfigured("bench.settings is for bench/run only (GATEKEEPER_BENCH_FLOOR=1)")

ROOT_URLCONF = "bench.urls"
