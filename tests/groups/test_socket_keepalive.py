"""A room socket keeps answering uvicorn's keepalive pings while its frames wait: a send held
up behind the room's lock, with the member's next frame already sent, must not get the socket
closed as unresponsive (1011, "keepalive ping timeout"). On a slow machine a reconnect storm's
database queue holds frames up like this (bench/ (d), docs/performance.md)."""

import asyncio
import json
import sqlite3
import uuid

import psycopg
import pytest
from channels.db import database_sync_to_async
from django.db import connection
from websockets.asyncio.client import connect

from tests.factories import make_session_key
from tests.servers import UvicornServer
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)


def hold_the_room(group):
    """Another writer holding the room until its connection rolls back: the room's row lock on
    PostgreSQL, the database's write lock on SQLite (a send waits for it within its busy
    timeout either way)."""
    if connection.vendor == "postgresql":
        locker = psycopg.connect(database_url())
        locker.execute("SELECT id FROM groups_group WHERE id = %s FOR UPDATE", [group.pk])
        return locker
    locker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    return locker


@pytest.fixture
def quick_pings(tmp_path):
    """A real server that pings every half second and gives up on a socket after another."""
    server = UvicornServer(
        log=tmp_path / "uvicorn.log",
        extra_args=["--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"],
    ).start()
    yield server
    server.stop()


async def test_a_socket_whose_frames_wait_on_the_database_still_answers_keepalive_pings(
    quick_pings, group, member
):
    session_key = await database_sync_to_async(make_session_key)(member)
    sent = {str(uuid.uuid4()): "Holding on here", str(uuid.uuid4()): "And one more thought"}
    # The first send waits for the other writer, the second waits behind it.
    locker = hold_the_room(group)
    try:
        async with connect(
            f"ws://localhost:{quick_pings.port}/ws/groups/{group.slug}/",
            origin=f"http://localhost:{quick_pings.port}",
            additional_headers={"Cookie": f"sessionid={session_key}"},
            open_timeout=10,
        ) as ws:
            for client_id, body in sent.items():
                await ws.send(json.dumps({"type": "send", "client_id": client_id, "body": body}))
            await asyncio.sleep(3)  # six pings, each given up on after half a second unanswered
            locker.rollback()  # the other writer is done
            acked = set()
            async with asyncio.timeout(15):
                while acked != set(sent):
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "ack":
                        acked.add(frame["client_id"])
            assert ws.close_code is None
    finally:
        locker.close()
