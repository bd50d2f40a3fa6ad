"""Real server processes for tests: uvicorn on the test database, as production runs it."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

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
        # The child gets its own copy of the log's descriptor; ours is closed once it has it.
        with open(self.log or os.devnull, "ab") as out:
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


class Visitor:
    """One browser over plain HTTP to a server process, with its own cookies (kept by hand:
    production marks them Secure) and what the proxy in front of it would add (``proxy``:
    ``X-Forwarded-Proto``, ``X-Forwarded-For``). ``scheme`` is what the browser believes it
    speaks, for the ``Origin`` and ``Referer`` Django's CSRF check compares."""

    def __init__(self, port: int, *, scheme: str = "http", proxy: dict[str, str] | None = None):
        self.port = port
        self.origin = f"{scheme}://localhost:{port}"
        self.proxy = dict(proxy or {})
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        """Returns ``(status, headers, text)``; cookies set or cleared are kept for next time."""
        headers = dict(self.proxy)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin  # Django checks it against the host over HTTPS
            headers["Referer"] = self.origin + path
        connection = http.client.HTTPConnection("localhost", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response.status, response.headers, text

    def get(self, path: str):
        return self.request("GET", path)

    def submit(self, path: str, fields: dict, *, form_page: str | None = None):
        """Post ``fields`` to ``path`` with the CSRF token of the page that shows the form
        (``path`` itself unless ``form_page`` says otherwise), as a browser does."""
        status, _headers, page = self.get(form_page or path)
        assert status == 200, f"GET {form_page or path} answered {status}"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request("POST", path, {"csrfmiddlewaretoken": token, **fields})


class ChatClient(RoomSocket):
    """A room tab as static/js/room.js is one: it tracks the highest seq shown, resumes from it
    on every (re)connect and on a gap, drops duplicates, and keeps every send in an outbox until
    it is acked, sending it again (same client_id) after a reconnect or when the server says to
    retry later."""

    def __init__(self, server: UvicornServer, session_key: str, slug: str = "evening-circle"):
        super().__init__(server, session_key, slug)
        self.seqs: list[int] = []  # every seq shown to the reader, in order
        self.last = 0
        self.pending: dict[str, str] = {}  # client_id -> body: sent, not yet acked
        self.acked: dict[str, int] = {}  # client_id -> seq
        self.refusals: dict[str, int] = {}  # error code -> how many
        self.opened = asyncio.Event()
        self._retries: set[asyncio.Task] = set()
        self._waiting: dict[str, asyncio.Event] = {}  # client_id -> set when acked

    async def on_open(self, ws) -> None:
        await ws.send(json.dumps({"type": "resume", "after": self.last}))
        self.ws = ws
        for client_id, body in list(self.pending.items()):
            await self._send(client_id, body)
        self.opened.set()

    def on_close(self) -> None:
        self.opened.clear()

    async def _send(self, client_id: str, body: str) -> None:
        if self.ws is not None:
            with contextlib.suppress(WebSocketException):
                await self.ws.send(
                    json.dumps({"type": "send", "client_id": client_id, "body": body})
                )

    async def say(self, body: str) -> str:
        client_id = str(uuid.uuid4())
        self.pending[client_id] = body
        self._waiting[client_id] = asyncio.Event()
        await self._send(client_id, body)
        return client_id

    async def until_acked(self, client_id: str) -> int:
        """Wait for the server to acknowledge a send (through any number of reconnects)."""
        await self._waiting[client_id].wait()
        return self.acked[client_id]

    async def _retry_later(self, client_id: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if client_id in self.pending:
            await self._send(client_id, self.pending[client_id])

    async def handle(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "message":
            seq = frame["seq"]
            if seq <= self.last:
                return  # a duplicate
            if seq > self.last + 1:
                # A gap: ask for what's missing; it comes back in order.
                await self.ws.send(json.dumps({"type": "resume", "after": self.last}))
                return
            self.seqs.append(seq)
            self.last = seq
        elif kind == "resumed":
            self.last = max(self.last, frame["latest"])
        elif kind == "ack":
            self.pending.pop(frame["client_id"], None)
            self.acked[frame["client_id"]] = frame["seq"]
            if frame["client_id"] in self._waiting:
                self._waiting[frame["client_id"]].set()
        elif kind == "error":
            code = frame.get("code")
            self.refusals[code] = self.refusals.get(code, 0) + 1
            client_id = frame.get("client_id")
            if code in ("rate_limited", "unavailable") and client_id in self.pending:
                # Retry without holding up the frames behind this one.
                task = asyncio.create_task(self._retry_later(client_id, frame["retry_after"]))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)

    async def stop(self) -> None:
        for task in list(self._retries):
            task.cancel()
        await super().stop()
