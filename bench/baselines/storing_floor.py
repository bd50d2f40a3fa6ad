"""Baseline 3: the storing floor, the least a server built from the stack's parts can do.

What no design of this product can leave out, and nothing else: uvicorn with the Procfile's
settings (two workers, uvloop, httptools, no per-message deflate), PostgreSQL storing every
message with its room's next ``seq`` before anyone sees it, and Redis pub/sub carrying each
stored message to the other worker's sockets. No Django, no Channels, no authentication, no
moderation, no ordering, no resume: a plain ASGI app and one SQL statement per message.

So it answers a question the other two can't: if even this can't reach a rate, no server made
of uvicorn, PostgreSQL and Redis on this machine can, however its Python is written. It speaks
the raw baseline's protocol (text frames, ``"<id> <words>"``, echoed to the whole room, the
sender included); its room is the URL's path.

    uvicorn bench.baselines.storing_floor:application --workers 2 --ws-per-message-deflate false
    (DATABASE_URL: postgres://...; CHANNEL_LAYER_URL: redis://...; CHANNEL_LAYER_PREFIX)
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from urllib.parse import urlparse

import psycopg
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

# One statement, in autocommit: the room's counter row is locked and bumped and the message
# stored with the new number, so seqs are gapless and unique across both workers.
SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_room (name text PRIMARY KEY, seq bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS floor_message (
    room text NOT NULL, seq bigint NOT NULL, body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (room, seq)
);
"""
STORE = """
WITH bumped AS (
    INSERT INTO floor_room (name, seq) VALUES (%(room)s, 1)
    ON CONFLICT (name) DO UPDATE SET seq = floor_room.seq + 1
    RETURNING seq
)
INSERT INTO floor_message (room, seq, body) SELECT %(room)s, seq, %(body)s FROM bumped
RETURNING seq
"""
# Connections per worker: enough that a message never waits for another room's statement
# while the database has a core to spare.
POOL_SIZE = 4


def _postgres_url() -> str:
    url = os.environ["DATABASE_URL"]
    scheme = urlparse(url).scheme
    if not scheme.startswith("postgres"):
        raise RuntimeError("the storing floor needs PostgreSQL (DATABASE_URL)")
    return url.replace(f"{scheme}://", "postgresql://", 1)


class Floor:
    def __init__(self) -> None:
        self.rooms: dict[str, set] = defaultdict(set)
        self.pool: AsyncConnectionPool | None = None
        self.redis: aioredis.Redis | None = None
        self.prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "asgi") + ".floor:"
        self.ready: asyncio.Task | None = None

    async def start(self) -> None:
        with psycopg.connect(_postgres_url(), autocommit=True) as connection:
            # Two workers start at once: one creates, the other waits for it.
            connection.execute("SELECT pg_advisory_lock(7411)")
            connection.execute(SCHEMA)
            connection.execute("SELECT pg_advisory_unlock(7411)")
        self.pool = AsyncConnectionPool(
            _postgres_url(),
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            open=False,
        )
        await self.pool.open(wait=True)
        self.redis = aioredis.from_url(os.environ.get("CHANNEL_LAYER_URL", "redis://127.0.0.1"))
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(self.prefix + "*")
        asyncio.get_running_loop().create_task(self.fan_out(pubsub))

    async def fan_out(self, pubsub) -> None:
        cut = len(self.prefix)
        async for message in pubsub.listen():
            room = message["channel"].decode()[cut:]
            text = message["data"].decode()
            for send in list(self.rooms.get(room, ())):
                try:
                    await send({"type": "websocket.send", "text": text})
                except Exception:  # noqa: S112 -- a socket that has gone; its disconnect follows
                    continue

    async def store(self, room: str, text: str) -> None:
        async with self.pool.connection() as connection:
            await connection.execute(STORE, {"room": room, "body": text})
        await self.redis.publish(self.prefix + room, text)

    async def socket(self, scope, receive, send) -> None:
        if self.ready is None:
            self.ready = asyncio.get_running_loop().create_task(self.start())
        await asyncio.shield(self.ready)
        room = scope["path"]
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        self.rooms[room].add(send)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await self.store(room, message["text"])
        finally:
            self.rooms[room].discard(send)


FLOOR = Floor()


async def application(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        await FLOOR.socket(scope, receive, send)
    elif scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
