#!/usr/bin/env bash
# manage.py with the production environment, as the services get it:
#   sudo -u community deploy/manage.sh migrate
#   sudo -u community deploy/manage.sh createsuperuser
# Reads $COMMUNITY_ENV (default /etc/community/community.env); quote values with spaces there.
set -euo pipefail
app="$(cd "$(dirname "$0")/.." && pwd)"
env_file="${COMMUNITY_ENV:-/etc/community/community.env}"
if [[ ! -r "$env_file" ]]; then
  echo "manage.sh: cannot read $env_file (set COMMUNITY_ENV to another file)." >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a
cd "$app"
exec "$app/.venv/bin/python" manage.py "$@"
