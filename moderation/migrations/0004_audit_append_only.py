"""The audit log is append-only in the database itself, not only in Python.

A trigger refuses every UPDATE and DELETE of a ``moderation_auditentry`` row, with one
exception: when a person's account is deleted, the rows they acted in stay and their ``actor``
link is cleared. That one UPDATE is allowed only when it changes nothing but ``actor_id`` to
NULL *and* the account it pointed to no longer exists, so nobody can quietly detach a moderator
from what they did while their account is still there.

For that the clearing happens in the database after the account row is gone (Django's
``on_delete=SET_NULL`` would update the rows first, while the account still exists, so the
model says ``DO_NOTHING``):

- PostgreSQL: the ``actor_id`` foreign key gets ``ON DELETE SET NULL``, and a PL/pgSQL trigger
  guards the table;
- SQLite (local development): the same guarantee with ``RAISE(ABORT, ...)`` triggers, plus an
  ``AFTER DELETE`` trigger on the user table that clears the link. SQLite drops a table's
  triggers when Django rebuilds the table, so a later migration that alters AuditEntry or the
  user model on SQLite must run ``create_sqlite`` again (tests/moderation/
  test_audit_append_only.py fails if the guarantee is gone).

TRUNCATE is not covered: it is a table owner's operation (test databases are flushed with it);
in production the application's database role should not own the tables (docs/security.md).
"""

from django.conf import settings
from django.db import migrations, models

MESSAGE = "The moderation audit log is append-only: its rows are never changed or deleted."


def _tables(apps):
    audit = apps.get_model("moderation", "AuditEntry")._meta
    user = apps.get_model(*settings.AUTH_USER_MODEL.split("."))._meta
    return audit, user


def _actor_fk_name(cursor, audit_table):
    cursor.execute(
        """
        SELECT c.conname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = 'actor_id'
        """,
        [audit_table],
    )
    return cursor.fetchone()[0]


def create_postgresql(schema_editor, audit, user, *, install=True):
    """Install (or, with ``install=False``, remove) the trigger and the foreign key's
    ON DELETE SET NULL."""
    a, u, pk = audit.db_table, user.db_table, user.pk.column
    with schema_editor.connection.cursor() as cursor:
        fk = _actor_fk_name(cursor, a)
    schema_editor.execute(f"ALTER TABLE {a} DROP CONSTRAINT {fk}")
    schema_editor.execute(
        f"ALTER TABLE {a} ADD CONSTRAINT {fk} FOREIGN KEY (actor_id) REFERENCES {u} ({pk}) "
        f"{'ON DELETE SET NULL ' if install else ''}DEFERRABLE INITIALLY DEFERRED"
    )
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {a}_append_only ON {a}")
    if not install:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {a}_append_only()")
        return
    # (%% is one % once the driver has read the statement.)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {a}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- The one change allowed: ON DELETE SET NULL after the actor's account was deleted.
            IF TG_OP = 'UPDATE'
               AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
               AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id')
               AND NOT EXISTS (SELECT 1 FROM {u} WHERE {pk} = OLD.actor_id)
            THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{MESSAGE} (%% refused)', TG_OP
                USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$
        """
    )
    schema_editor.execute(
        f"""
        CREATE TRIGGER {a}_append_only BEFORE UPDATE OR DELETE ON {a}
        FOR EACH ROW EXECUTE FUNCTION {a}_append_only()
        """
    )


def create_sqlite(schema_editor, audit, user):
    a, u, pk = audit.db_table, user.db_table, user.pk.column
    unchanged = " AND ".join(
        f"NEW.{f.column} IS OLD.{f.column}" for f in audit.concrete_fields if f.column != "actor_id"
    )
    for statement in drop_sqlite_statements(audit, user) + [
        f"""
        CREATE TRIGGER {a}_no_delete BEFORE DELETE ON {a}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END
        """,
        f"""
        CREATE TRIGGER {a}_no_update BEFORE UPDATE ON {a}
        WHEN NOT (
            OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND {unchanged}
            AND NOT EXISTS (SELECT 1 FROM {u} WHERE {pk} = OLD.actor_id)
        )
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (UPDATE refused)'); END
        """,
        f"""
        CREATE TRIGGER {a}_actor_deleted AFTER DELETE ON {u}
        BEGIN UPDATE {a} SET actor_id = NULL WHERE actor_id = OLD.{pk}; END
        """,
    ]:
        schema_editor.execute(statement)


def drop_sqlite_statements(audit, user):
    a = audit.db_table
    return [
        f"DROP TRIGGER IF EXISTS {a}_no_delete",
        f"DROP TRIGGER IF EXISTS {a}_no_update",
        f"DROP TRIGGER IF EXISTS {a}_actor_deleted",
    ]


def install(apps, schema_editor):
    audit, user = _tables(apps)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        create_postgresql(schema_editor, audit, user)
    elif vendor == "sqlite":
        create_sqlite(schema_editor, audit, user)


def uninstall(apps, schema_editor):
    audit, user = _tables(apps)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        create_postgresql(schema_editor, audit, user, install=False)
    elif vendor == "sqlite":
        for statement in drop_sqlite_statements(audit, user):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0003_queue_reports_audit"),
        # After the user table's last change, so SQLite doesn't rebuild it (dropping the
        # trigger on it) after this migration.
        ("community", "0005_people_and_data"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The database clears the link (ON DELETE SET NULL, or SQLite's trigger) once the
        # account is gone; no SQL here (on_delete is not a database attribute to Django).
        migrations.AlterField(
            model_name="auditentry",
            name="actor",
            field=models.ForeignKey(
                null=True,
                on_delete=models.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
