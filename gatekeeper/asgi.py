"""The ASGI entry point: long-polls wait on the event loop, everything else runs as under gthread.

`gunicorn gatekeeper.asgi:application -k uvicorn_worker.UvicornWorker` (docs/deployment.md).
A long-poll (GET /api/v1/approvals/{id}?wait=N) goes to a Django async view and costs no thread
while it waits. Every other request goes to Django's WSGI handler on a fixed pool of threads,
each keeping its database connection: Django's own ASGI handler would run each sync view on a
thread made for that request, so a kept connection would be a new one every time.
"""

from gatekeeper.startup import start

start()  # the settings come first: one line on stderr when they are wrong
from a2wsgi import WSGIMiddleware  # noqa: E402
from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class GatekeeperASGI:
    def __init__(self):
        django_wsgi = get_wsgi_application()  # sets Django up: the imports below need it
        if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
            # As runserver does (the demo): with DEBUG on, /static/ is served here too.
            django_wsgi = StaticFilesHandler(django_wsgi)
        from approvals import waiters
        from approvals.api.waiting import WaitingHandler, is_long_poll

        self.everything_else = WSGIMiddleware(django_wsgi, workers=settings.GATEKEEPER_ASGI_THREADS)
        self.long_polls = WaitingHandler()
        self.is_long_poll = is_long_poll
        self.waiters = waiters
        waiters.raise_descriptor_limit()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.is_long_poll(scope):
            await self.long_polls(scope, receive, send)
        else:
            await self.everything_else(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.waiters.close_for_this_loop()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = GatekeeperASGI()
