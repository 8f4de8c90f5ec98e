"""The Redis the real-worker tests use answers: without it they skip, or fail under CI."""

import redis


def test_the_test_redis_answers_and_starts_each_test_empty(redis_broker):
    client = redis.Redis.from_url(redis_broker)

    assert client.ping()
    assert client.dbsize() == 0
    client.close()
