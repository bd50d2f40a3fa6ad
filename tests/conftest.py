"""The named cast every test can ask for, and hygiene between tests."""

import pytest
from django.core.cache import cache

from tests.factories import make_member, make_moderator


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the Redis cache; each test starts with none."""
    cache.clear()
    yield


@pytest.fixture
def member(db):
    return make_member(
        display_name="Willow", email="willow@example.test", time_zone="Europe/Berlin"
    )


@pytest.fixture
def outsider(db):
    """A member of the site who belongs to none of the test's groups."""
    return make_member(display_name="Heron", email="heron@example.test")


@pytest.fixture
def moderator(db):
    return make_moderator(display_name="Cedar", email="cedar@example.test")
