"""``make chaos``: the fault tests, on a PostgreSQL cluster and a redis-server of their own.

Starts both on free loopback ports in a temporary directory, runs ``pytest tests/chaos`` with the
environment pointing at them (extra arguments go to pytest), then stops and removes them. The
tests kill and restart these servers, and only these: shared ones are never touched.

    python -m tests.chaos [pytest arguments]
"""

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.chaos.services import ROOT, Postgres, Redis, redis_env

# The variables that name servers; the outer environment's (CI's shared ones) must not leak in.
SERVER_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_URL",
    "CHANNEL_LAYER_URL",
    "CELERY_BROKER_URL",
)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the postgres user reaches its own directory inside
        postgres = Postgres(root / "postgres").init().start()
        redis = Redis(root / "redis").start()
        env = {key: value for key, value in os.environ.items() if key not in SERVER_VARIABLES}
        env.update(
            DATABASE_URL=postgres.url,
            **redis_env(redis.url),
            CHANNEL_LAYER_PREFIX="chaos",
            # One key for the tests and the servers they start in production mode, which
            # refuses the development key: sessions made by the tests are good on the servers.
            SECRET_KEY="chaos-" + secrets.token_hex(32),
            CHAOS_DIR=str(root),
            CHAOS_PG_PORT=str(postgres.port),
        )
        print(f"chaos: PostgreSQL on port {postgres.port}, Redis on port {redis.port}", flush=True)
        try:
            return subprocess.call(
                [sys.executable, "-m", "pytest", "tests/chaos", "-p", "no:cacheprovider", *argv],
                cwd=ROOT,
                env=env,
            )
        finally:
            redis.kill()
            if postgres.ready():
                postgres.stop(mode="immediate")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
