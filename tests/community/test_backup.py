"""deploy/backup.sh and deploy/restore.sh on the machine's PostgreSQL: a real pg_dump of the
test database, restored into a scratch database, with its rows and its append-only audit
trigger intact (docs/deploy.md, "Backups")."""

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from groups.models import Group
from moderation.models import AuditEntry
from tests.servers import test_database_url as database_url

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup.sh"
RESTORE = ROOT / "deploy" / "restore.sh"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres():
    """The test database's URL; skips where backups can't be what production makes."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "Backups are pg_dump archives of PostgreSQL; this run's DATABASE_URL is not "
            "PostgreSQL (run with DATABASE_URL=postgres://… to test them)."
        )
    missing = [tool for tool in ("pg_dump", "pg_restore", "psql") if not shutil.which(tool)]
    if missing:
        reason = f"{', '.join(missing)} not installed (Debian: apt-get install postgresql-client)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return database_url()


@pytest.fixture
def scratch_database(postgres):
    """An empty database beside the test database, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restore"
    admin_url = postgres.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(script: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_backup_restores_into_an_empty_database_with_its_rows_and_audit_trigger(
    postgres, scratch_database, tmp_path, group, member, moderator
):
    AuditEntry.objects.create(
        actor=moderator, action="warn", target_type="member", target_id=member.pk, reason="kind"
    )

    backup = run(BACKUP, str(tmp_path / "backups"), env={"DATABASE_URL": postgres})
    assert backup.returncode == 0, backup.stderr
    archive = Path(backup.stdout.strip())
    assert archive.parent == tmp_path / "backups"
    assert archive.name.startswith("community-") and archive.suffix == ".dump"
    assert archive.stat().st_mode & 0o077 == 0, "only its owner may read a backup"

    restore = run(RESTORE, str(archive), scratch_database)
    assert restore.returncode == 0, restore.stderr
    assert "accounts" in restore.stdout

    with psycopg.connect(scratch_database, autocommit=True) as restored:
        assert restored.execute(
            "SELECT name, agreement_version FROM groups_group WHERE slug = %s", [group.slug]
        ).fetchall() == [("Evening circle", 1)]
        assert restored.execute(
            "SELECT u.display_name FROM groups_membership m "
            "JOIN community_user u ON u.id = m.user_id WHERE m.group_id = %s",
            [group.pk],
        ).fetchall() == [("Willow",)]
        # The audit log is still append-only in the restored database.
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            restored.execute("UPDATE moderation_auditentry SET reason = 'rewritten'")
        assert restored.execute("SELECT reason FROM moderation_auditentry").fetchall() == [
            ("kind",)
        ]


def test_restore_refuses_a_database_that_already_has_tables(postgres, tmp_path, group):
    backup = run(BACKUP, str(tmp_path), env={"DATABASE_URL": postgres})
    assert backup.returncode == 0, backup.stderr

    # The live database itself, as a slip of the operator's hand would name it.
    restore = run(RESTORE, backup.stdout.strip(), postgres)

    assert restore.returncode == 1
    assert "restore only into an empty database" in restore.stderr
    assert list(Group.objects.values_list("name", flat=True)) == ["Evening circle"]


def test_backup_explains_a_missing_or_non_postgresql_database_url(tmp_path):
    missing = run(BACKUP, str(tmp_path), env={"DATABASE_URL": ""})
    assert missing.returncode == 2
    assert "DATABASE_URL is not set" in missing.stderr

    sqlite = run(BACKUP, str(tmp_path), env={"DATABASE_URL": "sqlite:///db.sqlite3"})
    assert sqlite.returncode == 2
    assert "not a PostgreSQL URL" in sqlite.stderr
    assert list(tmp_path.iterdir()) == []
