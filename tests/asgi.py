"""Requests made to an ASGI application in-process (asgiref's ApplicationCommunicator)."""


def get_scope(path: str, query: str = "", headers=()) -> dict:
    """The ASGI scope of `GET path?query` from a client on 127.0.0.1 to host testserver."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
