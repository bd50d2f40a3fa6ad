"""A go-around round across real processes: three members on a real uvicorn process (real
PostgreSQL and Redis), every one of them dropping and reconnecting mid-round, then the server
process killed and a new one started. The round lives in the database, so each reconnecting
client is told its current state and the round carries on to its end: a share, a pass, a skip.

The clients speak the documented protocol (docs/protocol.md) as static/js/room-rounds.js does:
resume on every (re)connect, then take the ``round`` frame that follows as the current state,
ignoring any older (round id, version).
"""

import asyncio
import contextlib
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import WebSocketException

from groups.models import Round, RoundTurn
from tests.factories import make_member, make_membership, make_session_key
from tests.servers import RoomSocket, UvicornServer

pytestmark = pytest.mark.django_db(transaction=True)


class RoundClient(RoomSocket):
    """One member's browser tab: keeps the newest round state it was told."""

    def __init__(self, server: UvicornServer, session_key: str):
        super().__init__(server, session_key)
        self.last_seq = 0
        self.bodies: list[str] = []
        self.round: dict | None = None  # the newest state seen
        self.resumed = False  # this connection's resume is done
        self.on_connect: dict | None = None  # the round this connection was told after resume
        self.replies: list[dict] = []  # acks, errors, candidates

    async def on_open(self, ws) -> None:
        self.on_connect, self.resumed = None, False
        await ws.send(json.dumps({"type": "resume", "after": self.last_seq}))

    async def handle(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "round":
            if self.on_connect is None:
                self.on_connect = frame
            newest = self.round and (self.round["id"] or 0, self.round["version"])
            if newest is None or (frame["id"] or 0, frame["version"]) >= newest:
                self.round = frame
        elif kind == "message":
            if frame["seq"] > self.last_seq:
                self.last_seq = frame["seq"]
                self.bodies.append(frame["body"])
        elif kind == "resumed":
            self.last_seq = max(self.last_seq, frame["latest"])
            self.resumed = True
        elif kind in ("ack", "error", "round_candidates"):
            self.replies.append(frame)

    async def send(self, **frame) -> None:
        await eventually(lambda: self.ws is not None and self.resumed)
        with contextlib.suppress(WebSocketException):
            await self.ws.send(json.dumps(frame))

    async def reply(self, kind: str) -> dict:
        await eventually(lambda: any(r["type"] == kind for r in self.replies))
        found = next(r for r in self.replies if r["type"] == kind)
        self.replies.remove(found)
        return found

    async def drop(self) -> None:
        """Lose the connection (the client reconnects by itself)."""
        self.on_connect = None
        before = self.connections
        await self.ws.close()
        await eventually(lambda: self.connections > before and self.on_connect is not None)


async def eventually(condition, *, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the round to arrive"
        await asyncio.sleep(0.03)


def seen(client: RoundClient) -> tuple:
    """What a member's screen shows of the round (``own``/``your_turn`` differ per member)."""
    r = client.round
    return r["state"], r["version"], r["current"], [(t["name"], t["status"]) for t in r["turns"]]


async def everyone_sees(clients, state, version, current):
    await eventually(
        lambda: all(
            c.round
            and (c.round["state"], c.round["version"], c.round["current"])
            == (state, version, current)
            for c in clients
        )
    )


@pytest.fixture
def cast(group, facilitator, member):
    """Session keys of Maple (facilitator), Willow and Alder, in the order they joined."""
    alder = make_member(display_name="Alder", email="alder@example.test")
    make_membership(group, alder)
    return [make_session_key(user) for user in (facilitator, member, alder)]


def stored_round(round_id):
    stored = Round.objects.get(pk=round_id)
    shared = RoundTurn.objects.select_related("message").get(round=stored, position=1)
    return stored.state, stored.version, shared.message.body


async def test_a_round_survives_every_member_reconnecting_and_a_server_restart(tmp_path, cast):
    server = UvicornServer(log=tmp_path / "uvicorn.log").start()
    try:
        maple, willow, alder = clients = [RoundClient(server, key).start() for key in cast]
        await eventually(lambda: all(c.resumed for c in clients))
        assert maple.round is None  # no round yet, so no round frame

        # Maple asks who's here and puts Alder first, herself second, Willow last.
        await maple.send(type="round_candidates")
        people = {p["name"]: p["id"] for p in (await maple.reply("round_candidates"))["people"]}
        assert set(people) == {"Maple", "Willow", "Alder"}
        order = [people["Alder"], people["Maple"], people["Willow"]]
        await maple.send(type="round_start", prompt="One word for how you arrived", order=order)
        await everyone_sees(clients, "active", 1, 1)
        round_id = maple.round["id"]
        assert [c.round["your_turn"] for c in clients] == [False, False, True]
        assert [c.round["can_facilitate"] for c in clients] == [True, False, False]

        # Alder shares: everyone gets the words, and the turn moves to Maple.
        client_id = str(uuid.uuid4())
        await alder.send(type="round_share", round=round_id, client_id=client_id, body="Steady")
        assert (await alder.reply("ack"))["client_id"] == client_id
        await everyone_sees(clients, "active", 2, 2)
        await eventually(lambda: all(c.bodies == ["Steady"] for c in clients))

        # Every member drops and reconnects: each is told the same state at once.
        for client in clients:
            await client.drop()
        for client in clients:
            assert client.on_connect["version"] == 2
            assert seen(client) == seen(maple)
        assert [c.on_connect["your_turn"] for c in clients] == [True, False, False]

        await maple.send(type="round_pass", round=round_id)
        await everyone_sees(clients, "active", 3, 3)
        assert willow.round["your_turn"]

        # The server process dies; a new one starts on the same port. The clients reconnect
        # with backoff and are told the round as the database holds it.
        connections = [c.connections for c in clients]
        server.kill()
        server.start()
        await eventually(
            lambda: all(
                c.connections > before and c.on_connect is not None
                for c, before in zip(clients, connections, strict=True)
            ),
            timeout=15,
        )
        for client in clients:
            assert (client.on_connect["version"], client.on_connect["current"]) == (3, 3)
        assert willow.on_connect["your_turn"]

        # Out of turn: a kind refusal that changes nothing.
        await alder.send(type="round_pass", round=round_id)
        refusal = await alder.reply("error")
        assert (refusal["code"], refusal["about"]) == ("not_your_turn", "round")

        # Maple skips Willow's turn: that was the last one, so the round ends by itself.
        await maple.send(type="round_skip", round=round_id, position=3)
        await everyone_sees(clients, "ended", 4, None)
        assert seen(willow) == (
            "ended",
            4,
            None,
            [("Alder", "shared"), ("Maple", "passed"), ("Willow", "skipped")],
        )
        for client in clients:
            await client.stop()
    finally:
        server.stop()

    assert await database_sync_to_async(stored_round)(round_id) == ("ended", 4, "Steady")
