"""Template context every page gets."""


def page_events(request) -> dict:
    """Whether this process serves the pages' event stream (gatekeeper.asgi marks its requests);
    elsewhere the pages keep to their timer refresh and open no stream."""
    return {"page_events": request.META.get("gatekeeper.page_events", False)}
