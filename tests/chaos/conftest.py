"""The fault tests run only under ``make chaos`` (``python -m tests.chaos``), which starts the
PostgreSQL cluster and redis-server they may kill; anywhere else they are skipped, so the normal
``make test`` run never stops a server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chaos.services import ROOT, Postgres, Redis

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    outside = None
    if not os.environ.get("CHAOS_DIR"):
        outside = pytest.mark.skip(
            reason="fault tests run with `make chaos` (servers of their own)"
        )
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.chaos)
            if outside is not None:
                item.add_marker(outside)


@pytest.fixture(autouse=True)
def _quick_passwords():
    """The servers here check passwords with the production hashers, so the members the tests
    make keep them too (this replaces tests/conftest.py's fast hasher)."""


@pytest.fixture
def postgres() -> Postgres:
    """The cluster ``make chaos`` started for this run; tests may stop and start it."""
    return Postgres(
        Path(os.environ["CHAOS_DIR"]) / "postgres", port=int(os.environ["CHAOS_PG_PORT"])
    )


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of this test's own, to SIGKILL and restart at will."""
    server = Redis(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def production_env(tmp_path_factory) -> dict:
    """Settings for server processes in production mode (DEBUG=false: the plain error pages,
    collected static files), over plain HTTP on loopback. Merge a test's database and Redis.
    SECRET_KEY is the run's own (``make chaos`` sets it), so the sessions this process signs
    are good there."""
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "localhost",
        "SECURE_SSL_REDIRECT": "false",  # no proxy in front here
        "STATIC_ROOT": str(static_root),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # servers keep Django's async safety
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    return env
