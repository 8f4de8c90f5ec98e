"""Fixtures for background work with real parts: Redis, Celery workers, gunicorn, SMTP, webhooks.

Only the outside world is stood in for, and by real servers on 127.0.0.1 (tests.background.
servers). Gatekeeper's own processes are started for real against the pytest-django test
database, so tests that use them need `django_db(transaction=True)`: another process sees only
committed rows.
"""

import ipaddress
import os
import socket
from urllib.parse import urlsplit, urlunsplit

import kombu.pools
import pytest
from django.db import connection

from tests.background.processes import CeleryWorker, WebNode, database_url, stop_all
from tests.background.servers import SmtpSink, WebhookReceiver
from tests.required import service_missing

# A Redis database of these tests' own, flushed before and after each test. `manage.py test`
# sets it, starting a private Redis when none answers (gatekeeper.bootstrap.ensure_redis).
REDIS_URL = os.environ.get("GATEKEEPER_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
# Short, so a killed worker's claim lapses within the test; the worker and this process agree.
LEASE_SECONDS = 2


def worker_redis_url(url: str, worker_id: str | None) -> str:
    """The Redis database of one pytest-xdist worker: gwN uses the URL's database plus N, so
    workers never flush or consume each other's queues; without xdist, the URL's own."""
    if not worker_id or not worker_id.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + int(worker_id[2:])
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def redis_broker(request) -> str:
    import redis

    url = worker_redis_url(REDIS_URL, getattr(request.config, "workerinput", {}).get("workerid"))
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_missing(f"these tests need Redis at {url} ({error})")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture
def webhook_receiver(settings):
    # This process (pytest runs it with DEBUG off) may deliver to it: it listens on loopback.
    settings.GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def refused_broker_url():
    """A redis:// URL on a port that is bound but not listening: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{held.getsockname()[1]}/0"


def _drop_broker_connections() -> None:
    from gatekeeper.celery import app

    # Celery keeps one connection pool per app, made for the URL it first saw.
    app._pool = None
    app.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture
def publish_to(settings):
    """Point this process's task publishing (the web side's) at a broker URL."""
    before = os.environ.get("CELERY_BROKER_URL")

    def point(url: str) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before Django's settings.
        os.environ["CELERY_BROKER_URL"] = url
        settings.CELERY_BROKER_URL = url
        _drop_broker_connections()

    yield point
    if before is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = before
    _drop_broker_connections()


@pytest.fixture
def process_env(transactional_db, redis_broker, smtp_sink, settings) -> dict:
    """What a Gatekeeper process needs to join the test: its database, broker and SMTP server."""
    settings.GATEKEEPER_OUTBOX_LEASE_SECONDS = LEASE_SECONDS
    return {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": redis_broker,
        "DEBUG": "true",
        "SECRET_KEY": settings.SECRET_KEY,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_TIMEOUT": "5",
        "GATEKEEPER_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }


def _end_all(children) -> None:
    stop_all(children)
    for child in children:
        # Shown by pytest only when the test failed.
        print(f"--- {child.name} log (tail) ---\n{child.log()[-4000:]}")


@pytest.fixture
def start_worker(process_env, tmp_path):
    """Start a Celery worker process; every one is ended when the test ends, pass or fail."""
    workers: list[CeleryWorker] = []

    def start(name: str, *, wait: bool = True, **env) -> CeleryWorker:
        worker = CeleryWorker(name, {**process_env, **env}, tmp_path)
        workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    _end_all(workers)


@pytest.fixture
def start_web_node(process_env, tmp_path, settings):
    """Start a gunicorn web node, production-style (DEBUG off); ended when the test ends."""
    nodes: list[WebNode] = []

    def start(name: str, *, wait: bool = True, threads: int = 4, asgi=False, **env) -> WebNode:
        node_env = {
            **process_env,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The same key as this process, so a session it logs in is valid on every node.
            "SECRET_KEY": settings.SECRET_KEY,
            **env,
        }
        node = WebNode(name, node_env, tmp_path, threads=threads, asgi=asgi)
        nodes.append(node)
        if wait:
            node.wait_ready()
        return node

    yield start
    _end_all(nodes)
