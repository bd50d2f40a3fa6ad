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
import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def _unreachable(operation: str) -> None:
    # Never the key: allauth's keys are derived from addresses and sign-in names.
    logger.warning("Cache unreachable (Redis down?): %s treated as a miss.", operation)


# Connection pools and clients for the whole process, by server address and pool options.
# Under ASGI Django makes a new cache object for every request (its ``caches`` are local to the
# request's context), and each new object opened new connections to Redis: about 1.5 ms of CPU
# per request on the benchmark machine (bench/, docs/performance.md). Pools and clients are
# thread-safe: each command takes a connection from the pool and gives it back.
_POOLS: dict[tuple, object] = {}
_CLIENTS: dict[int, object] = {}
_SHARED = threading.Lock()


class ResilientRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], repr(sorted(self._pool_options.items())))
        pool = _POOLS.get(key)
        if pool is None:
            with _SHARED:
                pool = _POOLS.get(key)
                if pool is None:
                    pool = _POOLS[key] = self._pool_class.from_url(
                        self._servers[index], **self._pool_options
                    )
        return pool

    def get_client(self, key=None, *, write=False):
        """One ``redis.Redis`` per connection pool, made once. Django builds a new one for
        every call, and building it (its tables of response callbacks) cost more CPU than the
        command it then sends: about 0.8 ms a call on the benchmark machine, four calls per chat
        message (bench/, docs/performance.md)."""
        pool = self._get_connection_pool(write)
        client = _CLIENTS.get(id(pool))
        if client is None:
            with _SHARED:
                client = _CLIENTS.get(id(pool))
                if client is None:
                    client = _CLIENTS[id(pool)] = self._client(connection_pool=pool)
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

    def count_windows(self, windows) -> list[tuple[int, int]]:
        """For each ``(key, previous_key, timeout)``: start ``key`` at 0 if new (expiring after
        ``timeout`` seconds), add one, and read ``previous_key``; returns (count, previous).

        One round trip for all of them (a pipeline), where Django's ``add``/``incr``/``get``
        take four per window (its ``incr`` checks that the key exists first). Raises the Redis
        error when Redis is unreachable: the caller decides what that means.
        Keys are already made (``make_and_validate_key``)."""
        pipe = self.get_client(write=True).pipeline(transaction=False)
        for key, previous_key, timeout in windows:
            pipe.set(key, 0, nx=True, ex=timeout)
            pipe.incr(key)
            pipe.get(previous_key)
        replies = pipe.execute()
        return [(int(replies[i + 1]), int(replies[i + 2] or 0)) for i in range(0, len(replies), 3)]


class ResilientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` whose client reads an unreachable Redis
    as an empty cache (see the module docstring)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ResilientRedisCacheClient

    def count_windows(self, windows) -> list[tuple[int, int]]:
        """``ResilientRedisCacheClient.count_windows`` with this cache's key prefix and version:
        ``windows`` are ``(key, previous_key, timeout)`` as the caller names them."""
        return self._cache.count_windows(
            [
                (self.make_and_validate_key(key), self.make_and_validate_key(previous), timeout)
                for key, previous, timeout in windows
            ]
        )
