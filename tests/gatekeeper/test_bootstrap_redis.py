"""`manage.py test` brings up Redis for the real-worker tests (gatekeeper.bootstrap.ensure_redis).

The machine's own Redis (6379) is shared and never touched here: "no Redis at the default
address" is an unused port, so the start path runs for real beside it.
"""

import os
import shutil
import socket

import pytest
import redis

from gatekeeper import bootstrap
from gatekeeper.bootstrap import TEST_REDIS, PrivateRedis, ensure_redis
from tests.background.processes import free_port
from tests.required import service_missing


@pytest.fixture(autouse=True)
def _redis_server_installed():
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (`manage.py test` installs it as root)")


def test_with_no_redis_at_the_default_address_a_private_one_serves_the_run_and_is_stopped():
    env = {}
    server, reason = ensure_redis(env, default=("127.0.0.1", free_port()))
    assert reason is None and server is not None
    try:
        assert env[TEST_REDIS] == server.url
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        config = client.config_get("*")
        assert (config["bind"], config["save"], config["appendonly"]) == ("127.0.0.1", "", "no")
        assert config["dir"] == os.path.realpath(server.directory)
        pid = server.pid()
        client.close()
    finally:
        server.stop()

    assert not bootstrap._redis_answers("127.0.0.1", server.port)
    assert not os.path.exists(server.directory)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_redis_answering_at_the_default_address_is_used_and_nothing_is_started():
    running = PrivateRedis()
    assert running.start() is None
    try:
        env = {}
        assert ensure_redis(env, default=("127.0.0.1", running.port)) == (None, None)
        assert env[TEST_REDIS] == f"redis://127.0.0.1:{running.port}/7"
    finally:
        running.stop()


def test_a_url_the_caller_chose_is_left_alone(monkeypatch):
    monkeypatch.setattr(bootstrap, "PrivateRedis", None)  # starting one would fail the test
    env = {TEST_REDIS: "redis://10.9.9.9:6390/3"}

    assert ensure_redis(env, default=("127.0.0.1", free_port())) == (None, None)
    assert env == {TEST_REDIS: "redis://10.9.9.9:6390/3"}


def test_something_else_on_the_port_is_not_taken_for_redis():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert not bootstrap._redis_answers("127.0.0.1", listening.getsockname()[1])


def test_without_root_a_missing_server_is_reported_with_the_command_to_run(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(
        bootstrap.shutil, "which", lambda name: None if name == "redis-server" else f"/bin/{name}"
    )

    env = {}
    server, reason = ensure_redis(env, default=("127.0.0.1", free_port()))

    assert server is None and TEST_REDIS not in env
    assert "sudo apt-get install redis-server" in reason


def test_a_redis_that_wants_a_password_is_passed_over_for_a_private_one():
    guarded = PrivateRedis()
    assert guarded.start() is None
    redis.Redis(port=guarded.port).config_set("requirepass", "not-ours")
    try:
        env = {}
        server, reason = ensure_redis(env, default=("127.0.0.1", guarded.port))
        assert reason is None and server is not None
        server.stop()
        assert env[TEST_REDIS] == server.url and server.port != guarded.port
    finally:
        guarded.stop()
