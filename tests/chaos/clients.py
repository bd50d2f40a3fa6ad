"""Clients for the fault tests: a room tab that follows the protocol through every fault, and
plain HTTP page loads that record how each one ended."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async

from groups.models import Message
from tests.servers import ChatClient


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
