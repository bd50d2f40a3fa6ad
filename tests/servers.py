"""Real server processes for tests: uvicorn on the test database, as production runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The URL of the test database pytest-django created, for server processes to share it."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    auth = f"{user}:{s['PASSWORD']}@" if s.get("PASSWORD") else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class UvicornServer:
    """One uvicorn process serving community.asgi on 127.0.0.1:port."""

    def __init__(
        self, *, port: int | None = None, env: dict | None = None, log: Path | None = None
    ):
        self.port = port or free_port()
        self.env = {**os.environ, "DATABASE_URL": test_database_url(), **(env or {})}
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # servers keep Django's async safety
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> UvicornServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 -- closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "community.asgi:application",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/help/", timeout=2) as response:  # noqa: S310 -- our own loopback server
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("uvicorn did not answer within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
