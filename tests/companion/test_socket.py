"""The practice space over the real room socket (ASGI stack, PostgreSQL, Redis): the same
protocol as any room, so the member's words and the companion's replies arrive live, in order,
and come back on a resume; nobody else can connect."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from companion.services import open_practice_space
from moderation.models import QueueItem
from tests.factories import install_seed_data
from tests.groups.test_chat_consumer import joined, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _fresh_channel_layer():
    yield
    await get_channel_layer().flush()


def _open(member):
    install_seed_data()  # this test's database starts empty
    return open_practice_space(member, actor=member).room


async def frames_until(socket, done, *, limit=10):
    frames = []
    while len(frames) < limit:
        frame = await socket.frame()
        frames.append(frame)
        if done(frame):
            break
    return frames


async def test_the_member_and_the_companion_talk_live_in_order_and_resume_from_the_start(
    member, facilitator
):
    room = await database_sync_to_async(_open)(member)
    willow = await joined(member, room.slug)
    await willow.post("Grounding")
    frames = await frames_until(willow, lambda f: f.get("kind") == "companion")
    messages = [f for f in frames if f["type"] == "message"]
    assert [(m["seq"], m["kind"]) for m in messages] == [(2, "text"), (3, "companion")]
    assert "ack" in [f["type"] for f in frames]
    companion = messages[-1]
    assert companion["author"] == {"name": "Companion (a program)"}
    assert companion["own"] is False and "slow down together" in companion["body"]

    await willow.send(type="resume", after=0)
    frames = await frames_until(willow, lambda f: f["type"] == "resumed")
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("message", 1),
        ("message", 2),
        ("message", 3),
        ("resumed", None),
    ]
    await willow.close()

    # Nobody else gets in: not a facilitator, not anyone.
    connected, maple = await open_socket(facilitator, room.slug)
    assert connected and await maple.closed_with() == 4403


async def test_crisis_words_bring_the_resources_to_the_member_and_help_now_reaches_a_moderator(
    member,
):
    room = await database_sync_to_async(_open)(member)
    willow = await joined(member, room.slug)
    await willow.post("I can't go on anymore, I just want it all to stop.")
    frames = await frames_until(willow, lambda f: f["type"] == "support")
    support = frames[-1]
    assert support["resources"] and "Nobody has been told" in support["message"]
    assert not await database_sync_to_async(QueueItem.objects.exists)()

    await willow.send(type="help")  # "I need help now": consent, at once
    await frames_until(willow, lambda f: f["type"] == "support")
    item = await database_sync_to_async(QueueItem.objects.get)()
    assert (item.kind, item.group_id) == ("crisis", room.pk)
    await willow.close()
