"""Clients for the fault tests: a room tab that follows the protocol through every fault, and
plain HTTP page loads that record how each one ended."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from websockets.exceptions import WebSocketException

from groups.models import Message
from tests.servers import RoomSocket, UvicornServer


class ChatClient(RoomSocket):
    """A room tab as static/js/room.js is one: it tracks the highest seq shown, resumes from it
    on every (re)connect and on a gap, drops duplicates, and keeps every send in an outbox until
    it is acked, sending it again (same client_id) after a reconnect or when the server says to
    retry later."""

    def __init__(self, server: UvicornServer, session_key: str, slug: str):
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


def stored_seqs(group_id: int) -> list[int]:
    return list(
        Message.objects.filter(group_id=group_id).order_by("seq").values_list("seq", flat=True)
    )


async def settle(clients_by_group: dict[int, list[ChatClient]], *, timeout: float = 90) -> dict:
    """Wait until every client's outbox is empty and every client shows exactly its group's
    stored seqs; returns the stored seqs per group (the caller asserts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stored = {
            group_id: await database_sync_to_async(stored_seqs)(group_id)
            for group_id in clients_by_group
        }
        done = all(
            not client.pending and client.seqs == stored[group_id]
            for group_id, clients in clients_by_group.items()
            for client in clients
        )
        if done or loop.time() > deadline:
            return stored
        await asyncio.sleep(0.25)


@dataclass
class PageLoad:
    path: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer at all
    error: str = ""


def load_page(port: int, path: str, *, session_key: str = "", timeout: float = 30) -> PageLoad:
    """One GET, as a signed-in browser (``session_key``) or anonymously; never raises."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("localhost", port, timeout=timeout)
    headers = {"Cookie": f"sessionid={session_key}"} if session_key else {}
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return PageLoad(path, started, time.monotonic(), response.status)
    except (OSError, http.client.HTTPException) as error:
        return PageLoad(path, started, time.monotonic(), None, type(error).__name__)
    finally:
        connection.close()


class PageLoads:
    """``concurrency`` threads loading ``paths`` in turn until stopped; every load is recorded."""

    def __init__(self, port: int, paths: list[str], *, session_key: str = "", concurrency=4):
        self.port, self.paths, self.session_key = port, paths, session_key
        self.concurrency = concurrency
        self.results: list[PageLoad] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, offset: int) -> None:
        n = offset
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            self.results.append(load_page(self.port, path, session_key=self.session_key))
            n += 1

    def start(self) -> PageLoads:
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
