"""Crisis language: never hidden or held against the member; the author gets support privately;
the item tops the queue; on-call moderators are alerted by Celery; escalation after the timeout.
"""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from community.errors import DomainError
from community.models import Notification
from groups.models import Message
from moderation import selectors, services
from moderation.models import QueueItem
from tests.moderation.conftest import CRISIS, FLAGGED, item_for, post

REASON = "Checking in."


@pytest.mark.django_db
def test_crisis_language_is_shown_and_goes_to_the_top_of_the_queue(
    group, member, facilitator, moderator
):
    flagged = item_for(post(group, facilitator, FLAGGED))
    message = post(group, member, CRISIS)

    message.refresh_from_db()
    assert message.held_at is None and message.hidden_at is None
    item = item_for(message)
    assert item.kind == "crisis"
    assert list(selectors.queue(actor=moderator)) == [item, flagged]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["hide_message", "warn_member", "mute_member", "remove_member"])
def test_a_crisis_item_offers_no_hide_warning_or_mute(group, member, moderator, action):
    message = post(group, member, CRISIS)
    item = services.claim_item(item_for(message), moderator=moderator)
    assert selectors.available_actions(item) == ("resolve",)
    extra = (
        {"duration": __import__("datetime").timedelta(hours=1)} if action == "mute_member" else {}
    )

    with pytest.raises(DomainError) as error:
        getattr(services, action)(item, actor=moderator, reason="Too heavy.", **extra)

    assert error.value.code == "crisis_no_sanction"
    message.refresh_from_db()
    assert message.hidden_at is None
    assert not member.moderation_actions.exists()
    assert QueueItem.objects.get(pk=item.pk).status == "claimed"


@pytest.mark.django_db
def test_a_crisis_item_is_resolved_without_anything_happening_to_the_member(
    group, member, moderator
):
    item = services.claim_item(item_for(post(group, member, CRISIS)), moderator=moderator)
    services.resolve_item(item, actor=moderator, reason="Reached out in the room; they're safe.")
    assert QueueItem.objects.get(pk=item.pk).status == "closed"
    assert not Notification.objects.filter(user=member, kind="moderation_action").exists()


@pytest.mark.django_db(transaction=True)
async def test_the_author_gets_support_privately_in_the_room(group, member, facilitator):
    from tests.groups.test_chat_consumer import joined

    await get_channel_layer().flush()  # forget connections made by earlier sync tests' loops
    try:
        mine = await joined(member)
        theirs = await joined(facilitator)
        await mine.post(CRISIS)

        frames = [await mine.frame() for _ in range(3)]
        support = next(f for f in frames if f["type"] == "support")
        assert "you don't have to hold it alone" in support["message"]
        assert support["resources"]  # the default crisis resources
        seen = [await theirs.frame()]
        assert seen[0]["type"] == "message" and seen[0]["body"] == CRISIS
        assert await theirs.quiet()
        await mine.close()
        await theirs.close()
    finally:
        await get_channel_layer().flush()


@pytest.mark.django_db(transaction=True)
async def test_i_need_help_now_takes_the_crisis_path_without_a_message(group, member):
    from tests.groups.test_chat_consumer import joined

    await get_channel_layer().flush()
    try:
        socket = await joined(member)
        await socket.send(type="help")
        frame = await socket.frame()
        assert frame["type"] == "support"
        await socket.send(type="help")  # pressing again doesn't pile up items
        assert (await socket.frame())["type"] == "support"
        await socket.close()
    finally:
        await get_channel_layer().flush()

    item = await database_sync_to_async(QueueItem.objects.get)(kind="crisis")
    assert item.message_id is None and item.member_id == member.pk
    assert await database_sync_to_async(Message.objects.count)() == 0


@pytest.mark.django_db
def test_a_claimed_crisis_item_is_not_escalated(group, member, moderator, settings):
    settings.MODERATION_CRISIS_ACK_MINUTES = 0
    item = services.claim_item(item_for(post(group, member, CRISIS)), moderator=moderator)
    assert services.escalate_overdue_items() == 0
    item.refresh_from_db()
    assert item.escalated_at is None


@pytest.mark.django_db
def test_an_unclaimed_crisis_item_waits_for_its_ack_time_before_escalating(group, member, settings):
    settings.MODERATION_CRISIS_ACK_MINUTES = 5
    post(group, member, CRISIS)
    assert services.escalate_overdue_items() == 0
    settings.MODERATION_CRISIS_ACK_MINUTES = 0
    assert services.escalate_overdue_items() == 1
    assert services.escalate_overdue_items() == 0
