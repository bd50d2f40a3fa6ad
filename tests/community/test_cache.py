"""The cache reads an unreachable Redis as empty (community.cache): pages, rate limits and
signing in keep working while Redis is down. Against real processes: tests/chaos/."""

import logging

import pytest
from django.core.cache import cache
from django.test import Client

from community.cache import ResilientRedisCache
from community.ratelimits import Limit, enforce
from tests.factories import PASSWORD
from tests.servers import free_port


@pytest.fixture
def redis_down(settings):
    """The cache pointed at a port nothing listens on."""
    location = f"redis://127.0.0.1:{free_port()}/1"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": location}}
    return location


def test_an_unreachable_redis_reads_as_an_empty_cache_and_writes_do_nothing(redis_down, caplog):
    caplog.set_level(logging.WARNING, logger="community.cache")
    down, key = ResilientRedisCache(redis_down, {}), "rate:signin:a-secret-digest"
    assert down.get(key, "default") == "default"
    assert down.add(key, 1) is True
    down.set(key, 1)
    assert down.get_many([key]) == {}
    assert down.has_key(key) is False
    assert down.delete(key) is False
    with pytest.raises(ValueError):
        down.incr(key)
    assert "unreachable" in caplog.text
    assert "a-secret-digest" not in caplog.text, "keys can be derived from addresses"


def test_a_reachable_redis_behaves_as_djangos_cache():
    assert cache.add("resilient-probe", 1) is True
    assert cache.add("resilient-probe", 2) is False
    assert cache.incr("resilient-probe") == 2
    assert cache.get("resilient-probe") == 2


def test_our_rate_limits_let_actions_through_while_redis_is_down(redis_down):
    for _ in range(3):
        enforce((Limit("probe", 1, 60), "someone"), message="%(seconds)s")


def test_signing_in_works_while_redis_is_down(member, redis_down):
    response = Client().post("/accounts/login/", {"login": member.email, "password": PASSWORD})
    assert (response.status_code, response.headers["Location"]) == (302, "/")
