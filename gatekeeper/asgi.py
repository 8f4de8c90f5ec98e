"""The ASGI entry point: requests that wait run on the event loop, the rest as under gthread.

`gunicorn gatekeeper.asgi:application -k uvicorn_worker.UvicornWorker` (docs/deployment.md).
A long-poll (GET /api/v1/approvals/{id}?wait=N) and a reviewer page's event stream
(GET /approvals/events/) go to Django async views and cost no thread while they wait. Every
other request goes to Django's WSGI handler on a fixed pool of threads, each keeping its
database connection: Django's own ASGI handler would run each sync view on a thread made for
that request, so a kept connection would be a new one every time.
"""

from gatekeeper.startup import start

start()  # the settings come first: one line on stderr when they are wrong
from a2wsgi import WSGIMiddleware  # noqa: E402
from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


def _with_page_events(wsgi_app):
    """Pages served here may name their event stream (approvals.context.page_events): this
    process answers it. Under gthread or runserver no stream is named, so no browser tries one."""

    def app(environ, start_response):
        environ["gatekeeper.page_events"] = True
        return wsgi_app(environ, start_response)

    return app


class GatekeeperASGI:
    def __init__(self):
        django_wsgi = get_wsgi_application()  # sets Django up: the imports below need it
        if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
            # As runserver does (the demo): with DEBUG on, /static/ is served here too.
            django_wsgi = StaticFilesHandler(django_wsgi)
        from approvals import page_events, waiters
        from approvals.api.waiting import WaitingHandler, is_long_poll

        self.everything_else = WSGIMiddleware(
            _with_page_events(django_wsgi), workers=settings.GATEKEEPER_ASGI_THREADS
        )
        self.long_polls = WaitingHandler()
        self.is_long_poll = is_long_poll
        self.page_events = page_events
        self.event_streams = page_events.PageEventsHandler()
        self.waiters = waiters
        waiters.raise_descriptor_limit()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.is_long_poll(scope):
            await self.long_polls(scope, receive, send)
        elif self.page_events.is_event_stream(scope):
            await self.event_streams(scope, receive, send)
        else:
            await self.everything_else(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.page_events.end_streams_on_exit_signals()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.page_events.close_for_this_loop()
                await self.waiters.close_for_this_loop()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = GatekeeperASGI()
