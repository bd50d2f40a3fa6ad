"""A safe-person pair room over the real socket (ASGI stack, PostgreSQL, Redis): the same
protocol as a circle's room, so 1:1 messages are stored in order, resumable, and screened by
moderation like any other."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from groups import services
from groups.models import Message
from moderation.models import QueueItem
from tests.factories import install_seed_data
from tests.groups.test_chat_consumer import collect, joined

pytestmark = pytest.mark.django_db(transaction=True)

CRISIS = "I can't go on anymore, I just want it all to stop."


@pytest.fixture(autouse=True)
async def _fresh_channel_layer():
    yield
    await get_channel_layer().flush()


def _connect(a, b):
    install_seed_data()  # the crisis rule: this test's database starts empty
    invite = services.invite_safe_person(a, invitee=b)
    return services.accept_safe_person_invite(invite.pk, user=b).room


async def test_pair_messages_are_stored_in_order_resumable_and_screened(group, member, facilitator):
    room = await database_sync_to_async(_connect)(member, facilitator)
    willow, maple = await joined(member, room.slug), await joined(facilitator, room.slug)

    await willow.post("Thank you for saying yes.")
    assert (await collect(willow, "ack", "message"))["ack"]["seq"] == 1
    seen = await maple.frame()
    assert (seen["seq"], seen["body"], seen["author"]) == (
        1,
        "Thank you for saying yes.",
        {"name": "Willow"},
    )
    await maple.post(CRISIS)
    assert (await collect(maple, "ack", "message"))["ack"]["seq"] == 2
    assert (await willow.frame())["seq"] == 2  # live, as in any room
    await maple.close()

    # Screening applies: the crisis words opened a queue item for the moderators.
    item = await database_sync_to_async(
        lambda: QueueItem.objects.filter(group_id=room.pk, kind="crisis").get()
    )()
    assert item.message_id is not None

    # Resuming from seq 0 brings both back, in order.
    await willow.send(type="resume", after=0)
    frames = [await willow.frame() for _ in range(3)]
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("message", 1),
        ("message", 2),
        ("resumed", None),
    ]
    assert frames[-1]["latest"] == 2
    assert await database_sync_to_async(
        lambda: list(Message.objects.filter(group=room).values_list("seq", flat=True))
    )() == [1, 2]
    await willow.close()
