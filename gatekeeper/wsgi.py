import gc

from gatekeeper.startup import start

start()
from django.core.wsgi import get_wsgi_application  # noqa: E402 (the settings come first)

application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules) lives as long as the process: move
# it out of the collector's sight. Otherwise each full collection walks all of it again, a
# 65 ms pause of the worker every couple of thousand requests (measured; bench/PROFILES.md),
# which is what a gate check's p99 latency sees.
gc.freeze()
