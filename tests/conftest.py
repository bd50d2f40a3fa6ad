"""The named cast every test can ask for, and hygiene between tests.

The cast: the “Evening circle” group; Maple, its facilitator; Willow, a member; Heron, an
outsider who belongs to no group of the test's; Cedar, a site moderator (staff).
"""

import pytest
from django.core.cache import cache

from tests.factories import make_group, make_member, make_membership, make_moderator


@pytest.fixture(autouse=True)
def _quick_passwords(request, settings):
    """Hashing a password the production way takes about 0.3 s, and most tests make several
    people. Browser tests keep the real hasher: they sign in through a server process, which
    checks passwords with the production settings."""
    if "/e2e/" not in str(request.node.path):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _sqlite_flush_past_the_audit_triggers():
    """Transactional tests end by emptying every table; on PostgreSQL that is TRUNCATE, which
    the audit log's append-only trigger doesn't see, but SQLite has only DELETE, which its
    trigger refuses. So on SQLite the flush lifts the audit triggers for its own transaction
    and puts the very same ones back (moderation/migrations/0004_audit_append_only.py)."""
    from django.db import connection, transaction

    if connection.vendor != "sqlite":
        yield
        return
    operations = type(connection.ops)
    original = operations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                ["moderation_auditentry_%"],
            )
            triggers = cursor.fetchall()
            for name, _sql in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            original(self, sql_list)
            for _name, sql in triggers:
                cursor.execute(sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the Redis cache; each test starts with none."""
    cache.clear()
    yield


@pytest.fixture
def group(db):
    """An open group of up to 12 whose agreement is at version 1."""
    return make_group(name="Evening circle", slug="evening-circle")


@pytest.fixture
def facilitator(group):
    user = make_member(display_name="Maple", email="maple@example.test")
    make_membership(group, user, role="facilitator")
    return user


@pytest.fixture
def member(group):
    user = make_member(
        display_name="Willow", email="willow@example.test", time_zone="Europe/Berlin"
    )
    make_membership(group, user)
    return user


@pytest.fixture
def outsider(db):
    return make_member(display_name="Heron", email="heron@example.test")


@pytest.fixture
def moderator(db):
    return make_moderator(display_name="Cedar", email="cedar@example.test")
