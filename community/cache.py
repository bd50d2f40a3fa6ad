"""Django's Redis cache, made to keep the site working while Redis is unreachable.

The cache holds no facts (PostgreSQL does): rate-limit counters, the crisis resources, the
matcher's version token. Our own callers already treat a cache error as "no cache". Libraries
don't: allauth's sign-in rate limit takes a lock with ``cache.add`` and turned a Redis outage
into a 500 on every sign-in (tests/chaos/test_redis_down.py). So when Redis cannot be reached,
reads here are misses and writes do nothing, and each is logged. Rate limits then let the action
through, as ``community.ratelimits`` already does: limits protect people from floods, they must
not lock everyone out. Other Redis errors (a wrong type, say) still raise.
"""

from __future__ import annotations

import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def _unreachable(operation: str) -> None:
    # Never the key: allauth's keys are derived from addresses and sign-in names.
    logger.warning("Cache unreachable (Redis down?): %s treated as a miss.", operation)


class ResilientRedisCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        """One ``redis.Redis`` per connection pool, made once. Django builds a new one for
        every call, and building it (its tables of response callbacks) cost more CPU than the
        command it then sends: about 0.8 ms a call on the benchmark machine, four calls per chat
        message (bench/, docs/performance.md). A client is thread-safe: each command takes a
        connection from the pool and gives it back."""
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients_by_pool", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def add(self, key, value, timeout):
        try:
            return super().add(key, value, timeout)
        except UNREACHABLE:
            _unreachable("add")
            return True  # as if added: a lock taken, a counter started; nothing is held back

    def get(self, key, default):
        try:
            return super().get(key, default)
        except UNREACHABLE:
            _unreachable("get")
            return default

    def set(self, key, value, timeout):
        try:
            super().set(key, value, timeout)
        except UNREACHABLE:
            _unreachable("set")

    def touch(self, key, timeout):
        try:
            return super().touch(key, timeout)
        except UNREACHABLE:
            _unreachable("touch")
            return False

    def delete(self, key):
        try:
            return super().delete(key)
        except UNREACHABLE:
            _unreachable("delete")
            return False

    def get_many(self, keys):
        try:
            return super().get_many(keys)
        except UNREACHABLE:
            _unreachable("get_many")
            return {}

    def has_key(self, key):
        try:
            return super().has_key(key)
        except UNREACHABLE:
            _unreachable("has_key")
            return False

    def incr(self, key, delta):
        try:
            return super().incr(key, delta)
        except UNREACHABLE:
            _unreachable("incr")
            raise ValueError("Key not found (the cache is unreachable).") from None

    def set_many(self, data, timeout):
        try:
            super().set_many(data, timeout)
        except UNREACHABLE:
            _unreachable("set_many")

    def delete_many(self, keys):
        try:
            super().delete_many(keys)
        except UNREACHABLE:
            _unreachable("delete_many")

    def clear(self):
        try:
            return super().clear()
        except UNREACHABLE:
            _unreachable("clear")
            return False


class ResilientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` whose client reads an unreachable Redis
    as an empty cache (see the module docstring)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ResilientRedisCacheClient
