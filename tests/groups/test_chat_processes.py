"""The chat room across real processes: two uvicorn servers sharing one Redis, a server process
killed mid-conversation, Redis killed (SIGKILL) and restarted mid-conversation, and a socket left
idle past redis-py's old 5 s read timeout.

The clients here speak the documented protocol the way static/js/room.js does: they track the
highest seq, resume with it on every (re)connect, ask to resume on a gap, drop duplicates, and
retry unacknowledged sends with the same client_id after reconnecting (backoff with jitter).
"""

import asyncio

import pytest
from channels.db import database_sync_to_async

from community.embedded_redis import start_redis_server
from groups.models import Message
from tests.factories import make_member, make_membership, make_session_key
from tests.servers import ChatClient, UvicornServer, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def stored_seqs():
    return list(Message.objects.order_by("seq").values_list("seq", flat=True))


async def settle(clients, expected_count: int, *, timeout: float = 40) -> list[int]:
    """Wait until every send is acked and every client shows exactly the stored seqs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stored = await database_sync_to_async(stored_seqs)()
        done = len(stored) == expected_count and all(
            not c.pending and c.seqs == stored for c in clients
        )
        if done or loop.time() > deadline:
            return stored
        await asyncio.sleep(0.25)


@pytest.fixture
def cast(group, member, facilitator):
    """Three members of the Evening circle, each with a signed-in session."""
    third = make_member(display_name="Alder", email="alder@example.test")
    make_membership(group, third)
    return [make_session_key(user) for user in (member, facilitator, third)]


@pytest.fixture
def two_servers(tmp_path, cast):
    servers = [UvicornServer(log=tmp_path / f"uvicorn-{n}.log").start() for n in (1, 2)]
    yield servers
    for server in servers:
        server.stop()


async def test_a_message_sent_through_one_server_process_reaches_members_on_another(
    two_servers, cast
):
    first, second = two_servers
    willow = ChatClient(first, cast[0]).start()
    maple = ChatClient(second, cast[1]).start()
    await asyncio.wait_for(asyncio.gather(willow.opened.wait(), maple.opened.wait()), 10)

    await willow.say("Hello from the first process")
    await maple.say("And hello back from the second")
    stored = await settle([willow, maple], 2)
    assert stored == [1, 2]
    assert willow.seqs == maple.seqs == [1, 2]
    await willow.stop()
    await maple.stop()


async def test_a_server_process_dying_mid_conversation_costs_no_message(two_servers, cast):
    first, second = two_servers
    clients = [ChatClient(first, cast[0]), ChatClient(second, cast[1]), ChatClient(second, cast[2])]
    for client in clients:
        client.start()
    await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in clients)), 10)

    for n in range(6):
        for client in clients:
            await client.say(f"round {n}")
        if n == 2:
            second.kill()  # two of the three lose their connection at once
        if n == 3:
            second.start()  # same port: they reconnect with backoff and resume
        await asyncio.sleep(0.6)

    stored = await settle(clients, 18)
    assert stored == list(range(1, 19))
    for client in clients:
        assert client.seqs == stored
        assert sorted(client.acked.values()) == sorted(set(client.acked.values()))
    assert clients[1].connections >= 2
    for client in clients:
        await client.stop()


async def test_redis_killed_and_restarted_mid_conversation_every_client_ends_with_the_stored_seqs(
    tmp_path, cast
):
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_process = start_redis_server(port, directory=redis_dir)
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}"}
    servers = [UvicornServer(env=env, log=tmp_path / f"uvicorn-{n}.log").start() for n in (1, 2)]
    try:
        clients = [
            ChatClient(servers[0], cast[0]),
            ChatClient(servers[1], cast[1]),
            ChatClient(servers[0], cast[2]),
        ]
        for client in clients:
            client.start()
        await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in clients)), 10)

        for n in range(8):
            for client in clients:
                await client.say(f"round {n}")
            if n == 2:
                redis_process.kill()  # SIGKILL: channel groups, presence, counters all gone
                redis_process.wait()
            if n == 5:
                redis_process = start_redis_server(port, directory=redis_dir)
            await asyncio.sleep(1.1)  # under the 10-per-10 s limit per member

        stored = await settle(clients, 24)
        assert stored == list(range(1, 25)), "every send stored once, no gaps"
        for client in clients:
            assert not client.pending, "every send was acked"
            assert client.seqs == stored, "every client saw every message once, in order"
        for client in clients:
            await client.stop()
    finally:
        for server in servers:
            server.stop()
        redis_process.kill()
        redis_process.wait()


async def test_an_idle_socket_on_a_real_server_still_receives_after_more_than_five_seconds(
    two_servers, cast
):
    server = two_servers[0]
    listener = ChatClient(server, cast[0]).start()
    speaker = ChatClient(server, cast[1]).start()
    await asyncio.wait_for(asyncio.gather(listener.opened.wait(), speaker.opened.wait()), 10)
    connections_before = listener.connections

    await asyncio.sleep(6.5)  # past redis-py 8's default 5 s socket read timeout
    await speaker.say("still there?")
    stored = await settle([listener, speaker], 1)
    assert listener.seqs == stored == [1]
    assert listener.connections == connections_before, "the idle socket was never dropped"
    await listener.stop()
    await speaker.stop()
