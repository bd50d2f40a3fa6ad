#!/usr/bin/env bash
# A consistent backup of the community's PostgreSQL database: one pg_dump custom-format archive
# (compressed; restore it with deploy/restore.sh). Redis holds no facts, so it needs no backup.
#
#   DATABASE_URL=postgres://user@host:5432/name deploy/backup.sh [DIRECTORY]
#
# DIRECTORY defaults to $BACKUP_DIR, else /var/backups/community. Archives older than
# $BACKUP_KEEP_DAYS days (default 14) are deleted after a successful backup. Prints the new
# archive's path. The archive holds everything members wrote: it is created readable by its
# owner only, and belongs on encrypted storage (docs/deploy.md).
set -euo pipefail

if [[ -z "${DATABASE_URL:-}" ]]; then
  echo "backup.sh: DATABASE_URL is not set (postgres://user@host:5432/name)." >&2
  exit 2
fi
case "$DATABASE_URL" in
  postgres://*|postgresql://*) ;;
  *) echo "backup.sh: DATABASE_URL is not a PostgreSQL URL; only PostgreSQL is backed up here." >&2
     exit 2 ;;
esac

dir="${1:-${BACKUP_DIR:-/var/backups/community}}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
umask 077
mkdir -p "$dir"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
final="$dir/community-$stamp.dump"
partial="$dir/.community-$stamp.dump.partial"
trap 'rm -f "$partial"' EXIT

# pg_dump reads in one snapshot, so the archive is consistent while the site keeps running.
pg_dump --format=custom --dbname="$DATABASE_URL" --file="$partial"
# An archive pg_restore cannot list is not a backup.
pg_restore --list "$partial" >/dev/null
mv "$partial" "$final"
trap - EXIT

find "$dir" -maxdepth 1 -name 'community-*.dump' -type f -mtime +"$keep_days" -delete
echo "$final"
