"""The audit log is append-only in the database itself: whatever sends it (raw SQL, the ORM
past the model's own guard, a future bug), an UPDATE or DELETE of an audit row is refused. The
one change allowed is the database clearing the actor link after that person's account is
deleted, so deleting an account keeps working and its audit rows stay.

Runs on PostgreSQL (CI) and SQLite (local development) alike: each has its own trigger
(moderation/migrations/0004_audit_append_only.py)."""

import pytest
from django.db import IntegrityError, connection, transaction

from community.models import User
from moderation import services
from moderation.models import AppendOnlyError, AuditEntry
from moderation.services.audit import record_audit
from tests.factories import PASSWORD, make_member, make_membership
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db

# The statements name the table literally (plain SQL, no string building).
assert AuditEntry._meta.db_table == "moderation_auditentry"


def entry(actor, **extra) -> AuditEntry:
    return record_audit(
        actor=actor, action="hide", target_type="message", target_id=7, reason="Unkind.", **extra
    )


def row(pk) -> dict:
    return AuditEntry._base_manager.filter(pk=pk).values().get()


def refused_by_the_database(statement):
    """``statement`` fails in the database (in a savepoint, so the test's transaction lives on)."""
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        statement()


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)


def test_inserting_audit_rows_works(moderator):
    first = entry(moderator)
    sql(
        "INSERT INTO moderation_auditentry (created_at, actor_id, action, target_type, reason, result) "
        "VALUES (CURRENT_TIMESTAMP, %s, 'claim', 'queue_item', '', 'ok')",
        [moderator.pk],
    )
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "hide",
        "claim",
    ]
    assert first.pk


def test_raw_sql_update_and_delete_of_an_audit_row_are_refused(moderator):
    audit = entry(moderator)
    before = row(audit.pk)

    refused_by_the_database(
        lambda: sql(
            "UPDATE moderation_auditentry SET reason = %s WHERE id = %s", ["rewritten", audit.pk]
        )
    )
    refused_by_the_database(
        lambda: sql("UPDATE moderation_auditentry SET result = 'ok'")
    )  # even a no-op
    refused_by_the_database(
        lambda: sql("DELETE FROM moderation_auditentry WHERE id = %s", [audit.pk])
    )
    refused_by_the_database(lambda: sql("DELETE FROM moderation_auditentry"))

    assert row(audit.pk) == before


def test_the_orms_update_and_delete_are_refused_twice_in_code_and_in_the_database(moderator):
    audit = entry(moderator)
    before = row(audit.pk)

    # The model's own guard...
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=audit.pk).update(reason="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    # ...and, past it (the plain manager Django itself uses), the database.
    refused_by_the_database(
        lambda: AuditEntry._base_manager.filter(pk=audit.pk).update(reason="rewritten")
    )
    refused_by_the_database(lambda: AuditEntry._base_manager.filter(pk=audit.pk).delete())

    assert row(audit.pk) == before


def test_a_living_moderator_cannot_be_detached_from_what_they_did(moderator):
    audit = entry(moderator)
    someone_else = make_member()

    refused_by_the_database(
        lambda: sql("UPDATE moderation_auditentry SET actor_id = NULL WHERE id = %s", [audit.pk])
    )
    refused_by_the_database(
        lambda: sql(
            "UPDATE moderation_auditentry SET actor_id = %s WHERE id = %s",
            [someone_else.pk, audit.pk],
        )
    )
    assert row(audit.pk)["actor_id"] == moderator.pk


def test_deleting_an_account_keeps_its_audit_rows_and_clears_only_their_actor(moderator, member):
    mine, theirs = entry(moderator, group_id=3), entry(member)
    before = row(mine.pk)

    User.objects.filter(pk=moderator.pk).delete()  # as account erasure deletes the row
    connection.check_constraints()  # the deferred foreign key checks pass too

    after = row(mine.pk)
    assert after.pop("actor_id") is None
    before.pop("actor_id")
    assert after == before
    assert row(theirs.pk)["actor_id"] == member.pk

    member.delete()  # a model instance's delete() as well
    connection.check_constraints()
    assert row(theirs.pk)["actor_id"] is None
    assert AuditEntry.objects.count() == 2


def test_erasing_a_moderators_account_works_and_the_log_of_their_actions_stays(group, moderator):
    from community.services.data import erase_account

    author = make_member()
    make_membership(group, author)
    item = services.claim_item(item_for(post(group, author, FLAGGED)), moderator=moderator)
    services.hide_message(item, actor=moderator, reason="Unkind to another member.")
    actions = sorted(AuditEntry.objects.filter(actor=moderator).values_list("action", flat=True))
    assert "hide" in actions

    erase_account(moderator, password=PASSWORD, keep_messages=False)
    connection.check_constraints()

    assert not User.objects.filter(pk=moderator.pk).exists()
    left = AuditEntry.objects.filter(action__in=actions, actor__isnull=True)
    assert sorted(left.values_list("action", flat=True)) == actions
    assert left.get(action="hide").reason == "Unkind to another member."
