"""1,000 chat sends while a uvicorn worker and Redis are each SIGKILLed and restarted at random
moments: every acknowledged message is in the database exactly once, and every client ends with
exactly the stored seq list of its room.

The web runs as the Procfile runs it: one uvicorn supervisor with two worker processes on one
port (a killed worker is replaced by the supervisor). Ten members talk in four rooms at once,
each in every room, one socket per member and room: forty clients, twenty-five sends each.
The moments are drawn from a seeded generator; the seed is in every failure message
(``CHAOS_SEED=<n> make chaos`` replays the same schedule).
"""

import asyncio
import contextlib
import os
import random
import signal
import time

import pytest

from groups.models import Message
from tests.chaos.clients import ChatClient, settle
from tests.chaos.services import redis_env
from tests.factories import make_group, make_member, make_membership, make_session_key
from tests.servers import UvicornServer
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOMS = 8
PEOPLE = 5
SENDS_EACH = 25  # 8 rooms x 5 people x 25 = 1,000 sends
WORKER_KILLS = 2
REDIS_OUTAGES = 2
TALK_TIMEOUT = 140  # seconds; far more than a run takes even on a busy machine


@pytest.fixture
def rooms(group, member, facilitator):
    """Four rooms with the same ten members in each, and a signed-in session per member."""
    people = [member, facilitator] + [
        make_member(display_name=f"Friend {n}", email=f"friend{n}@example.test")
        for n in range(PEOPLE - 2)
    ]
    groups = [group] + [
        make_group(name=f"Circle {n}", slug=f"circle-{n}", capacity=PEOPLE)
        for n in range(ROOMS - 1)
    ]
    for other in groups[1:]:
        for person in people:
            make_membership(other, person)
    for person in people[2:]:
        make_membership(group, person)
    sessions = [make_session_key(person) for person in people]
    return groups, sessions


def open_sockets(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` process ``pid`` holds, from /proc."""
    inodes = set()
    with contextlib.suppress(OSError):  # it (or one of its files) ended while we looked
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                inodes.add(os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[")[:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
            count += local_port == port and state == "01" and inode in inodes
    return count


def chaos_schedule(rng: random.Random) -> list[tuple[float, str, float]]:
    """(share of all sends acknowledged, what, seconds Redis stays down): random moments."""
    events = [(rng.uniform(0.1, 0.9), "kill worker", 0.0) for _ in range(WORKER_KILLS)]
    events += [
        (rng.uniform(0.1, 0.9), "kill redis", rng.uniform(1, 4)) for _ in range(REDIS_OUTAGES)
    ]
    return sorted(events)


async def run_chaos(server, redis_server, events, clients, log: list) -> None:
    """Fire each event once the share of acknowledged sends passes its moment."""
    started = time.monotonic()
    total = ROOMS * PEOPLE * SENDS_EACH
    restarts: list[asyncio.Task] = []

    def note(what: str) -> None:
        log.append((round(time.monotonic() - started, 1), what))

    async def bring_redis_back(after: float) -> None:
        await asyncio.sleep(after)
        await asyncio.to_thread(redis_server.start)
        note("redis started")

    for moment, what, down_for in events:
        while sum(len(client.acked) for client in clients) < moment * total:
            await asyncio.sleep(0.05)
        if what == "kill worker":
            while not server.worker_pids():
                await asyncio.sleep(0.05)  # both are being replaced
            # The worker holding the most sockets (the kernel may have given one nearly all).
            victim = max(server.worker_pids(), key=lambda pid: open_sockets(pid, server.port))
            os.kill(victim, signal.SIGKILL)
            note(f"SIGKILL uvicorn worker {victim}")
        else:
            while restarts and not restarts[-1].done():
                await asyncio.sleep(0.05)  # the last outage is still on
            redis_server.kill()
            note("SIGKILL redis")
            restarts.append(asyncio.create_task(bring_redis_back(down_for)))
    await asyncio.gather(*restarts)


async def talk(client: ChatClient, label: str) -> None:
    """Send one message after another, each once the last was acknowledged (a person waits
    to see their words arrive), as fast as the server and its rate limit allow."""
    for n in range(SENDS_EACH):
        await client.until_acked(await client.say(f"{label} says hello {n}"))


def test_a_thousand_sends_through_worker_and_redis_kills_are_each_stored_once_and_seen_in_order(
    rooms, production_env, redis_server, tmp_path
):
    groups, sessions = rooms
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    rng = random.Random(seed)
    env = {**production_env, **redis_env(redis_server.url), "DATABASE_URL": database_url()}
    server = UvicornServer(workers=2, env=env, log=tmp_path / "uvicorn.log").start()
    log: list = []
    try:
        while len(server.worker_pids()) < 2:
            time.sleep(0.1)

        async def scenario():
            clients = {
                room.pk: [ChatClient(server, key, room.slug).start() for key in sessions]
                for room in groups
            }
            everyone = [client for members in clients.values() for client in members]
            await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in everyone)), 60)
            with contextlib.suppress(TimeoutError):  # the assertions below say what is missing
                await asyncio.wait_for(
                    asyncio.gather(
                        run_chaos(server, redis_server, chaos_schedule(rng), everyone, log),
                        *(talk(client, f"client {n}") for n, client in enumerate(everyone)),
                    ),
                    TALK_TIMEOUT,
                )
            stored = await settle(clients, timeout=30)
            for client in everyone:
                await client.stop()
            return clients, stored

        clients, stored = asyncio.run(scenario())
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # a worker killed last may still be starting again
        final_workers = server.worker_pids()
    finally:
        server.stop()

    about = f"seed {seed}; faults: {log}"
    assert [what for _at, what in log].count("SIGKILL redis") == REDIS_OUTAGES, about
    killed = {int(what.rsplit(" ", 1)[1]) for _at, what in log if what.startswith("SIGKILL uv")}
    assert len(killed) == WORKER_KILLS, about
    assert len(final_workers) == 2 and not killed & set(final_workers), (
        "the supervisor replaced them"
    )
    everyone = [client for members in clients.values() for client in members]
    assert sum(client.connections > 1 for client in everyone) > 0, about

    rows = list(Message.objects.values_list("group_id", "client_id", "seq"))
    assert len(rows) == ROOMS * PEOPLE * SENDS_EACH, about
    by_client_id = {str(client_id): (group_id, seq) for group_id, client_id, seq in rows}
    assert len(by_client_id) == len(rows), f"a send was stored twice; {about}"
    for room_id, members in clients.items():
        expected = list(range(1, PEOPLE * SENDS_EACH + 1))
        assert stored[room_id] == expected, f"room {room_id} has gaps or extras; {about}"
        for client in members:
            assert not client.pending, f"a send was never acknowledged; {about}"
            assert len(client.acked) == SENDS_EACH, about
            for client_id, seq in client.acked.items():
                assert by_client_id[client_id] == (room_id, seq), f"ack != stored; {about}"
            assert client.seqs == stored[room_id], f"a client's view differs; {about}"
