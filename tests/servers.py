"""Real server processes for tests: uvicorn on the test database, as production runs it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

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
        self,
        *,
        port: int | None = None,
        env: dict | None = None,
        log: Path | None = None,
        workers: int = 1,
        log_level: str = "warning",
        extra_args: tuple | list = (),
    ):
        self.port = port or free_port()
        self.log_level = log_level  # uvicorn's --log-level (the Procfile's is warning)
        self.extra_args = list(extra_args)  # more of uvicorn's options, e.g. --proxy-headers
        self.workers = workers  # more than one: uvicorn's supervisor, as the Procfile runs it
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
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", self.log_level,
             *(["--workers", str(self.workers)] if self.workers > 1 else []), *self.extra_args],
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

    def worker_pids(self) -> list[int]:
        """With ``workers`` > 1: the supervisor's worker processes now running (multiprocessing
        spawns each through ``spawn_main``), from /proc."""
        pids = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue  # not a process, or it ended while we looked
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z" and b"spawn_main" in command:
                pids.append(int(entry))
        return sorted(pids)

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


class RoomSocket:
    """A protocol-following client of one room on a real server, as a browser tab is: it keeps
    reconnecting (exponential backoff with jitter, like static/js/room.js) until stopped.

    Subclasses say what to send on each (re)connect (``on_open``, before any frame is read),
    what to forget when a connection drops (``on_close``), and what to do with each frame
    (``handle``).
    """

    def __init__(self, server: UvicornServer, session_key: str, slug: str = "evening-circle"):
        self.server = server
        self.session_key = session_key
        self.slug = slug
        self.ws = None
        self.connections = 0
        self._stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://localhost:{self.server.port}/ws/groups/{self.slug}/"

    def start(self):
        self.task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=10)

    async def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                async with connect(
                    self.ws_url,
                    origin=f"http://localhost:{self.server.port}",
                    additional_headers={"Cookie": f"sessionid={self.session_key}"},
                    open_timeout=5,
                ) as ws:
                    self.connections += 1
                    await self.on_open(ws)
                    self.ws, delay = ws, 0.2
                    async for raw in ws:
                        await self.handle(json.loads(raw))
            except (TimeoutError, OSError, WebSocketException, InvalidStatus):
                pass
            finally:
                self.ws = None
                self.on_close()
            if not self._stop.is_set():
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 3.0)

    async def on_open(self, ws) -> None:
        """Called on every (re)connect, before ``ws`` is offered to senders."""

    def on_close(self) -> None:
        """Called whenever a connection ends (or failed to open)."""

    async def handle(self, frame: dict) -> None:
        raise NotImplementedError
