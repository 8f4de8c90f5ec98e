import gc

from gatekeeper.startup import start

start()
from django.core.wsgi import get_wsgi_application  # noqa: E402 (the settings come first)

application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules) lives as long as the process: move
# it out of the collector's sight, or each full collection walks all of it again and pauses the
# worker where a gate check's p99 latency sees it (bench/PROFILES.md).
gc.freeze()
