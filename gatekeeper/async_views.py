"""One Django async view under gatekeeper.asgi, on the event loop and never off it.

For requests that stay open (an agent's long-poll, a reviewer page's event stream), which
arrive by the hundred a second with thousands of agents waiting: Django's ASGIHandler would
hop to asgiref's one shared thread seven times for each (the request_started signal, each
process_request and process_response of the three middleware below, and the response's
close, which sends request_finished), and those hops, not the view, were most of what a poll
cost the event loop and the GIL the gate checks' threads need (bench/PROFILES.md, session 5).
Here the middleware, which only set headers, run inline; the signals' receivers look after
this loop thread's database connection, which these views never open (their reads run on
threads of their own, approvals/waiters.py), so request_started is not sent and
request_finished runs inline, finding nothing to close.
"""

import asyncio
import io
from contextlib import closing

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

# Headers every answer carries; none reads or writes anything but the request and response.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


class AsyncViewHandler(ASGIHandler):
    """Django's ASGI handler for the async `view(request)` alone."""

    def __init__(self, view):
        self.view = view
        super().__init__()

    async def __call__(self, scope, receive, send):
        # Without Django's per-request ThreadSensitiveContext: nothing here runs on a thread.
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware = [import_string(path)(self._unused) for path in MIDDLEWARE]
        self._middleware_chain = convert_exception_to_response(self._through_middleware)

    @staticmethod
    def _unused(request):
        raise AssertionError("the chain is walked by _through_middleware")

    async def _through_middleware(self, request):
        for middleware in self._middleware:
            response = getattr(middleware, "process_request", lambda request: None)(request)
            if response is not None:
                return response
        response = await self.view(request)
        for middleware in reversed(self._middleware):
            if hasattr(middleware, "process_response"):
                response = middleware.process_response(request, response)
        return response

    async def read_body(self, receive):
        """The body in memory (these views answer GETs; Django's spools it to a file)."""
        body = io.BytesIO()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            body.write(message.get("body", b""))
            if body.tell() > settings.GATEKEEPER_MAX_REQUEST_BYTES:
                raise RequestAborted()
            if not message.get("more_body", False):
                body.seek(0)
                return body

    async def handle(self, scope, receive, send):
        """Django's ASGIHandler.handle, less the request_started signal."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(error_response, send)
                return

            class RequestProcessed(Exception):
                pass

            response = None
            try:
                try:
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self.listen_for_disconnect(receive))
                        response = await self._middleware_chain(request)
                        await self.send_response(response, send)
                        raise RequestProcessed
                except* (RequestProcessed, RequestAborted):
                    pass
            except BaseExceptionGroup as exception_group:
                if len(exception_group.exceptions) == 1:
                    raise exception_group.exceptions[0] from None
                raise
            if response is not None:
                # Its closers (a stream gives its seat back) and request_finished, whose
                # receivers find no connection opened on this thread: nothing to wait for.
                response._handler_class = self.__class__
                response.close()
