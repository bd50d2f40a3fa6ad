"""PostgreSQL gets parameters apart from the query (``DATABASE_SERVER_SIDE_BINDING``,
community/settings.py): psycopg no longer quotes every parameter into each chat statement's
text (bench/ (b), docs/performance.md)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_postgresql_queries_carry_their_parameters_apart_from_the_text(member):
    if connection.vendor != "postgresql":
        pytest.skip("server-side binding is PostgreSQL's (SQLite locally)")
    from django.db.backends.postgresql.base import ServerBindingCursor

    with connection.cursor() as cursor:
        assert isinstance(cursor.cursor, ServerBindingCursor)
        # The statement PostgreSQL received names its parameter; the value came apart.
        cursor.execute(
            "SELECT display_name, (SELECT query FROM pg_stat_activity WHERE pid ="
            " pg_backend_pid()) FROM community_user WHERE id = %s",
            [member.pk],
        )
        name, query = cursor.fetchone()
    assert name == member.display_name
    assert query.endswith("WHERE id = $1")
