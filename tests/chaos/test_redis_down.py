"""Redis down (SIGKILLed) under running servers: pages still render and signing in still works
(sessions live in PostgreSQL), chat sends are stored and acknowledged or answered with an
explicit error, and when Redis comes back the realtime service returns by itself: the channel
layer subscribes again, presence and rate-limit counters are written again, with no restart."""

import asyncio
import time

import pytest
import redis

from groups.models import Message
from tests.chaos.clients import ChatClient, load_page, settle
from tests.chaos.services import redis_env
from tests.community.test_production import Visitor
from tests.factories import make_member, make_membership, make_session_key
from tests.servers import UvicornServer
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/groups/", "/groups/evening-circle/", "/notifications/", "/help/", "/me/profile/"]
PASSWORD = "the tide comes in slowly"


def sign_in(port: int, email: str) -> tuple[int, str, Visitor]:
    """allauth's sign-in form, as a browser posts it; returns (status, Location, browser)."""
    visitor = Visitor(port)
    status, headers, _page = visitor.submit(
        "/accounts/login/", {"login": email, "password": PASSWORD}
    )
    return status, headers.get("Location", ""), visitor


async def wait_for(condition, timeout: float = 40) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


def test_with_redis_down_pages_sign_in_and_chat_work_and_realtime_returns_by_itself(
    production_env, redis_server, tmp_path, group, member, facilitator
):
    newcomer = make_member(display_name="Brook", email="brook@example.test", password=PASSWORD)
    make_membership(group, newcomer)
    env = {**production_env, **redis_env(redis_server.url), "DATABASE_URL": database_url()}
    server = UvicornServer(workers=2, env=env, log=tmp_path / "uvicorn.log").start()
    willow, maple = make_session_key(member), make_session_key(facilitator)
    channels_db = redis.Redis(port=redis_server.port, db=2)
    cache_db = redis.Redis(port=redis_server.port, db=1)
    room_channel = f"chaos__group__chat.room.{group.pk}"

    def subscribers() -> int:
        try:
            return channels_db.pubsub_numsub(room_channel)[0][1]
        except redis.RedisError:
            return 0

    try:
        while len(server.worker_pids()) < 2:
            time.sleep(0.1)
        workers = server.worker_pids()

        async def scenario():
            speaker = ChatClient(server, willow, group.slug).start()
            listener = ChatClient(server, maple, group.slug).start()
            await asyncio.wait_for(
                asyncio.gather(speaker.opened.wait(), listener.opened.wait()), 20
            )
            await speaker.until_acked(await speaker.say("Before Redis went away"))
            assert await wait_for(lambda: subscribers() >= 1), "the room is subscribed"

            redis_server.kill()  # SIGKILL: cache, channel layer, presence and broker all gone
            pages = [
                await asyncio.to_thread(load_page, server.port, p, session_key=willow)
                for p in PAGES
            ]
            anonymous = await asyncio.to_thread(load_page, server.port, "/")
            signed_in = await asyncio.to_thread(sign_in, server.port, newcomer.email)
            sends = [await speaker.say(f"While Redis is down {n}") for n in range(3)]
            await asyncio.sleep(3)  # sends answered while Redis stays down
            down = {
                "pages": pages,
                "anonymous": anonymous,
                "signed_in": signed_in,
                "acked_while_down": [c for c in sends if c in speaker.acked],
                "refused_while_down": dict(speaker.refusals),
            }

            await asyncio.to_thread(redis_server.start)  # empty, as after a crash
            resubscribed = await wait_for(lambda: subscribers() >= 1)
            # Each socket writes its presence back on its periodic refresh.
            present = await wait_for(lambda: cache_db.hlen(f"chat:presence:{group.pk}") == 2)
            await speaker.until_acked(await speaker.say("After Redis came back"))
            stored = await settle({group.pk: [speaker, listener]})
            await speaker.stop()
            await listener.stop()
            return down, resubscribed, present, stored[group.pk], speaker, listener

        down, resubscribed, present, stored, speaker, listener = asyncio.run(scenario())

        # Pages and signing in, with Redis gone.
        assert [(p.path, p.status) for p in down["pages"]] == [(p, 200) for p in PAGES]
        assert down["anonymous"].status == 200
        status, location, browser = down["signed_in"]
        assert (status, location) == (302, "/"), "signed in with Redis down"
        assert browser.get("/notifications/")[0] == 200, "the new session works"
        # Chat sends: stored and acked (the rate limit lets them through), or told to retry.
        answered = len(down["acked_while_down"]) + down["refused_while_down"].get("unavailable", 0)
        assert answered >= 3, down

        # Back by itself: the room's channel is subscribed again on the new Redis, presence and
        # rate-limit counters are written there again; every send stored once, seen in order.
        assert resubscribed, "the channel layer subscribed again"
        assert present, "both sockets' presence is back"
        assert cache_db.keys("community:*rate:chat*"), "the chat rate limit counts again"
        assert server.worker_pids() == workers, "no worker was restarted"
        assert stored == list(range(1, 6)) == speaker.seqs == listener.seqs
        assert not speaker.pending
        assert Message.objects.filter(group=group).count() == 5
    finally:
        server.stop()
