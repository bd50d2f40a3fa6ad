#!/usr/bin/env bash
# Restore an archive made by deploy/backup.sh into an EMPTY database.
#
#   deploy/restore.sh ARCHIVE TARGET_DATABASE_URL
#
# Create the target first (createdb -O community community_restored), restore into it, check it,
# then point DATABASE_URL at it (docs/deploy.md, "Restoring"). The script refuses a target that
# already has tables, so it can never overwrite the live database by mistake. Objects are
# restored owned by the connecting role (--no-owner) without the old grants (--no-acl); the
# whole restore is one transaction, so a failure leaves the target empty.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: restore.sh ARCHIVE TARGET_DATABASE_URL" >&2
  exit 2
fi
archive="$1"
target="$2"

if [[ ! -r "$archive" ]]; then
  echo "restore.sh: cannot read $archive" >&2
  exit 2
fi
case "$target" in
  postgres://*|postgresql://*) ;;
  *) echo "restore.sh: the target must be a postgres:// URL" >&2; exit 2 ;;
esac

tables="$(psql --no-psqlrc --quiet --tuples-only --no-align --dbname="$target" \
  --command="SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'")"
if [[ "$tables" != "0" ]]; then
  echo "restore.sh: the target database already has $tables tables; restore only into an empty database." >&2
  exit 1
fi

pg_restore --no-owner --no-acl --exit-on-error --single-transaction \
  --dbname="$target" "$archive"

# A quick check that this is the community's schema, with its migrations recorded.
migrations="$(psql --no-psqlrc --quiet --tuples-only --no-align --dbname="$target" \
  --command="SELECT count(*) FROM django_migrations")"
members="$(psql --no-psqlrc --quiet --tuples-only --no-align --dbname="$target" \
  --command="SELECT count(*) FROM community_user")"
echo "Restored: $migrations migrations recorded, $members accounts."
