from gatekeeper.startup import start

start()
from django.core.asgi import get_asgi_application  # noqa: E402 (the settings come first)

application = get_asgi_application()
