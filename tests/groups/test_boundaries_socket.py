"""Content boundaries, the content-note suggestion and stepping away, over the real chat socket
(real PostgreSQL and the real Redis channel layer and presence store)."""

import uuid

import pytest
from channels.db import database_sync_to_async

from groups import services
from groups.models import Message
from tests.groups.test_chat_consumer import (  # noqa: F401 -- the fixture is used by name
    _fresh_channel_layer,
    collect,
    joined,
    presence,
)

pytestmark = pytest.mark.django_db(transaction=True)

GRIEF = {"value": "grief", "label": "Grief and loss", "phrase": "grief and loss"}


def stored_bodies(group):
    return list(Message.objects.filter(group=group).order_by("seq").values_list("body", flat=True))


async def set_boundaries(user, topics):
    await database_sync_to_async(services.set_content_boundaries)(user, actor=user, topics=topics)


async def test_a_send_on_a_topic_without_a_note_is_suggested_one_then_sent_as_it_is(group, member):
    willow = await joined(member)
    client_id = await willow.post("My dad died in March")

    suggestion = await willow.frame()
    assert suggestion["type"] == "error"
    assert suggestion["code"] == "suggest_content_note"
    assert suggestion["client_id"] == client_id
    assert suggestion["topics"] == [GRIEF]
    assert suggestion["message"].startswith("This touches on grief and loss.")
    assert await willow.quiet()
    assert await database_sync_to_async(stored_bodies)(group) == []

    await willow.post("My dad died in March", client_id=client_id, topics_ok=True)
    sent = await collect(willow, "ack", "message")
    assert sent["ack"] == {"type": "ack", "client_id": client_id, "seq": 1}
    assert sent["message"]["topics"] == ["grief"]
    assert await database_sync_to_async(stored_bodies)(group) == ["My dad died in March"]
    await willow.close()


async def test_adding_the_suggested_note_sends_it_folded_behind_the_note(group, member):
    willow = await joined(member)
    client_id = await willow.post("My dad died in March")
    assert (await willow.frame())["code"] == "suggest_content_note"

    await willow.post("My dad died in March", client_id=client_id, content_warning="Grief and loss")
    sent = await collect(willow, "ack", "message")
    assert sent["message"]["content_warning"] == "Grief and loss"
    await willow.close()


async def test_softened_reaches_a_member_with_that_boundary_only_and_never_the_sender(
    group, member, facilitator, outsider
):
    from tests.factories import make_membership

    await database_sync_to_async(make_membership)(group, outsider)
    await set_boundaries(member, ["grief"])
    await set_boundaries(facilitator, ["grief"])
    willow, maple, heron = await joined(member), await joined(facilitator), await joined(outsider)

    await maple.post("The funeral is on Friday", topics_ok=True)

    own = (await collect(maple, "ack", "message"))["message"]
    assert own["softened"] == []  # the sender's own words are never folded for them
    softened = await willow.frame()
    assert (softened["type"], softened["softened"]) == ("message", [GRIEF])
    plain = await heron.frame()
    assert (plain["type"], plain["softened"]) == ("message", [])
    for socket in (willow, maple, heron):
        await socket.close()


async def test_a_boundary_chosen_while_connected_softens_the_next_message_at_once(
    group, member, facilitator
):
    willow, maple = await joined(member), await joined(facilitator)
    await maple.post("The funeral is on Friday", topics_ok=True)
    assert (await willow.frame())["softened"] == []

    await set_boundaries(member, ["grief"])
    await willow.send(type="resume", after=1, since=0)  # a round trip: the event is handled
    await collect(willow, "resumed")
    await maple.post("Thinking of my gran today, the grief is heavy", topics_ok=True)
    assert (await willow.frame())["softened"] == [GRIEF]

    await set_boundaries(member, [])
    await willow.send(type="resume", after=2, since=0)
    await collect(willow, "resumed")
    await maple.post("The funeral went gently in the end", topics_ok=True)
    assert (await willow.frame())["softened"] == []
    await willow.close()
    await maple.close()


async def presence_until(socket, expected):
    while True:
        frame = await presence(socket)
        if frame["present"] == expected:
            return frame


async def test_stepping_away_shows_taking_a_break_to_others_and_coming_back_clears_it(
    group, member, facilitator
):
    maple, willow = await joined(facilitator), await joined(member)
    here = [
        {"name": "Maple", "listening": False, "away": False},
        {"name": "Willow", "listening": False, "away": False},
    ]
    await presence_until(maple, here)

    await willow.send(type="away", away=True)
    await presence_until(
        maple,
        [
            {"name": "Maple", "listening": False, "away": False},
            {"name": "Willow", "listening": False, "away": True},
        ],
    )
    # Everyone's presence reads agree (the socket keeps its own state for its refreshes).
    from groups.services.presence import presence_snapshot

    assert {"name": "Willow", "listening": False, "away": True} in await database_sync_to_async(
        presence_snapshot
    )(group.pk)

    await willow.send(type="away", away=False)
    await presence_until(maple, here)
    await willow.close()
    await maple.close()


async def test_away_without_a_boolean_is_a_bad_frame_and_changes_nothing(group, member):
    willow = await joined(member)
    await willow.send(type="away", away="yes")
    error = await willow.frame()
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    await willow.close()


async def test_a_new_send_after_a_suggestion_still_reaches_the_room_in_order(
    group, member, facilitator
):
    willow, maple = await joined(member), await joined(facilitator)
    await willow.post("The funeral is on Friday")
    assert (await willow.frame())["code"] == "suggest_content_note"
    await willow.post("Hello all", client_id=str(uuid.uuid4()))
    assert (await maple.frame())["body"] == "Hello all"
    await willow.close()
    await maple.close()
