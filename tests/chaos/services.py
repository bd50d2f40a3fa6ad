"""Private servers for the fault tests: a PostgreSQL cluster and redis-servers of their own, on
free loopback ports, that the tests may kill and restart. Nobody else's services are touched.

PostgreSQL refuses to run as root, so when we are root its commands run as the ``postgres``
user (``runuser``), in a directory that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql).")
    return path


class Postgres:
    """One PostgreSQL cluster in ``directory`` on 127.0.0.1:``port`` (trust auth, user
    ``postgres``), durable enough for tests only (fsync off)."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/chaos"

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True, cwd="/"
        )

    def init(self) -> Postgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        return self

    def start(self) -> Postgres:
        self._run(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every session at once, as ``systemctl restart`` does."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def ready(self) -> bool:
        result = subprocess.run(
            [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0


class Redis:
    """A redis-server on 127.0.0.1:``port`` that keeps nothing on disk; SIGKILL and start it
    again on the same port as often as a test likes."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        path = shutil.which("redis-server")
        if path:
            return path
        from community.embedded_redis import redis_server_binary

        return str(redis_server_binary())

    def start(self) -> Redis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--databases", "16",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _ping_redis(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: every key, channel subscription and queued task on it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def redis_env(url: str) -> dict:
    """Environment that points a process's cache, channel layer and Celery broker at ``url``
    (settings derive databases 1, 2 and 3 from REDIS_URL)."""
    return {
        "REDIS_URL": url,
        "CACHE_URL": f"{url}/1",
        "CHANNEL_LAYER_URL": f"{url}/2",
        "CELERY_BROKER_URL": f"{url}/3",
    }


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` still running, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class CeleryProcess:
    """``celery -A community worker`` or ``beat``, as the Procfile runs them, in its own process
    group, logging to a file."""

    def __init__(self, kind: str, *, env: dict, log: Path, extra: tuple[str, ...] = ()):
        self.kind, self.env, self.log, self.extra = kind, env, log, extra
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryProcess:
        if self.kind == "worker":
            args = ["worker", "--loglevel", "INFO", "--concurrency", "2", "--without-mingle",
                    "--without-gossip", *self.extra]  # fmt: skip
        else:
            args = ["beat", "--loglevel", "INFO", "--scheduler",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                    "--schedule", str(self.log.with_suffix(".schedule")), *self.extra]  # fmt: skip
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "community", *args],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60) -> CeleryProcess:
        marker = "ready." if self.kind == "worker" else "beat: Starting"
        deadline = time.monotonic() + timeout
        while marker not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"celery {self.kind} exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery {self.kind} not ready in {timeout} s:\n{self.output()}")
            time.sleep(0.2)
        return self

    def pool_processes(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL to the whole group if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class _SinkServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # the port of a "down" mail server, taken up again
    daemon_threads = True


class SmtpSink:
    """A small SMTP server in a thread that keeps what it accepts. A message counts as
    delivered only once the sink has answered its DATA with 250, as a real server commits it.

    ``stall_for(address)``: the next message to ``address`` is held after its data arrived,
    before the 250, until ``release()`` (``stalled`` is set meanwhile); if the sender died in
    between, the message is dropped, as a real server drops an unfinished transaction.
    """

    def __init__(self, port: int = 0):
        self.delivered: list[tuple[list[str], bytes]] = []
        self.stalled = threading.Event()
        self._release = threading.Event()
        self._stall_address: str | None = None
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink._converse(self.connection, self.rfile)

        self.server = _SinkServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]

    def start(self) -> SmtpSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def stall_for(self, address: str) -> None:
        self._stall_address, self._release = address, threading.Event()
        self.stalled.clear()

    def release(self) -> None:
        self._release.set()

    def to(self, address: str) -> list[bytes]:
        with self._lock:
            return [data for recipients, data in self.delivered if address in recipients]

    def _converse(self, sock, rfile) -> None:
        def reply(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        recipients: list[str] = []
        reply("220 sink ESMTP")
        while line := rfile.readline():
            command = line.decode(errors="replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 sink")
            elif verb == "MAIL":
                recipients = []
                reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 go ahead")
                data = b""
                while (chunk := rfile.readline()) and chunk != b".\r\n":
                    data += chunk
                if self._stall_address in recipients and not self.stalled.is_set():
                    self.stalled.set()
                    self._release.wait(timeout=120)
                    if _peer_gone(sock):
                        return  # the sender died mid-transaction: nothing was delivered
                with self._lock:
                    self.delivered.append((list(recipients), data))
                reply("250 OK: queued")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:
                reply("250 OK")


def _peer_gone(sock) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def until(condition, timeout: float = 60, what: str = "") -> None:
    """Wait (from a test, against the test database) until ``condition()`` holds; fail with
    ``what`` after ``timeout`` seconds. Each try sees the database afresh."""
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.1)
