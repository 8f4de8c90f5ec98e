"""One Django async view under gatekeeper.asgi, outside the WSGI thread pool.

For requests that stay open (an agent's long-poll, a reviewer page's event stream): through
async-capable middleware only, so none holds a thread while it waits.
"""

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

# Headers every answer carries. (The sync-only middleware serve browser sessions, which such a
# view reads itself on its database threads, and the API's HTML-error replacement.)
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
        # Without Django's per-request ThreadSensitiveContext: the thread it makes for the
        # request's signals would live as long as the request stays open. They run on asgiref's
        # one shared thread instead (they only check this loop thread's unused connection).
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self.view)
        for path in reversed(MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler
