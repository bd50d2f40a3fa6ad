"""The crisis path in a practice space (policy: consent, docs/companion.md). Crisis language
stops the flow, brings the crisis resources to the member alone and asks whether a moderator
may be told; only a yes (or "I need help now") puts an item in the queue, with the same
priority, alerts and escalation as any room's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from community.models import Notification
from companion.selectors import practice_state
from moderation import services as moderation
from moderation.models import ITEM_PRIORITY, AuditEntry, QueueItem
from moderation.selectors import item_context
from tests.companion.conftest import fresh

pytestmark = pytest.mark.django_db

CRISIS = "I can't go on anymore, I just want it all to stop."


def test_crisis_language_stops_the_flow_shows_resources_and_asks_before_telling_anyone(
    space, member, write
):
    write(space, "Grounding")
    assert fresh(space).flow == "grounding"
    asked = write(space, CRISIS)
    assert len(asked) == 1
    assert "pause our practice" in asked[0]
    assert "Would you like me to let a moderator know" in asked[0]
    assert "Nothing is sent unless you say yes" in asked[0]
    now = fresh(space)
    assert now.flow == "" and now.crisis_seq is not None
    state = practice_state(member)
    assert state["crisis"] and state["choices"] == ["Yes, please tell a moderator", "Not now"]
    assert state["support"]["resources"]  # the crisis resources, for the member alone
    assert not QueueItem.objects.exists()  # nobody has been told


def test_a_yes_opens_a_crisis_item_with_the_message_and_it_escalates_like_any_rooms(
    space, member, moderator, write, settings
):
    write(space, CRISIS)
    told = write(space, "Yes, please tell a moderator")[0]
    assert "I've let a moderator know" in told
    item = QueueItem.objects.get()
    assert (item.kind, item.group_id, item.member_id) == ("crisis", space.room_id, member.pk)
    assert item.message.body == CRISIS
    assert item.priority == ITEM_PRIORITY["crisis"] == max(ITEM_PRIORITY.values())
    assert AuditEntry.objects.filter(
        action="help_requested", target_id=item.pk, result="practice_consent"
    ).exists()
    assert fresh(space).crisis_seq is None
    assert not practice_state(member)["crisis"]

    # The same escalation as a group room's crisis item: nobody claimed it in time.
    settings.MODERATION_CRISIS_ACK_MINUTES = 0
    assert moderation.escalate_overdue_items(now=timezone.now() + timedelta(seconds=1)) == 1
    assert Notification.objects.filter(user=moderator, dedupe_key=f"escalation:{item.pk}").exists()
    # The moderator reads the message through the item, as in any room.
    context = item_context(item, actor=moderator)
    assert CRISIS in [m["body"] for m in context["messages"] if m["is_subject"]]


def test_not_now_tells_nobody_and_says_so(space, member, write):
    write(space, CRISIS)
    answer = write(space, "Not now")[0]
    assert "Nothing has been sent to anyone" in answer
    assert not QueueItem.objects.exists()
    assert fresh(space).crisis_seq is None
    assert practice_state(member)["choices"][0] == "Grounding"


def test_an_unclear_answer_is_asked_once_more_gently(space, write):
    write(space, CRISIS)
    again = write(space, "I don't know")[0]
    assert "“Yes” and “Not now” are both okay answers" in again
    assert fresh(space).crisis_seq is not None
    assert not QueueItem.objects.exists()


def test_i_need_help_now_in_the_practice_space_reaches_a_moderator_at_once(space, member):
    item = moderation.request_help(space.room, user=member)
    assert (item.kind, item.group_id, item.member_id) == ("crisis", space.room_id, member.pk)


def test_i_need_help_now_in_the_practice_space_promises_contact_not_a_visit(
    space, member, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync, sync_to_async
    from channels.layers import get_channel_layer

    from community.realtime import user_channel_group

    def ask_for_help():
        with django_capture_on_commit_callbacks(execute=True):
            moderation.request_help(space.room, user=member)

    async def support_event():
        # One event loop for the whole exchange: the pub/sub layer's channels live in one loop.
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(user_channel_group(member.pk), channel)
        try:
            await sync_to_async(ask_for_help)()
            return await layer.receive(channel)
        finally:
            await layer.group_discard(user_channel_group(member.pk), channel)

    event = async_to_sync(support_event)()
    # Moderators never enter a practice space, so nobody promises to come "here".
    assert event["type"] == "chat.support" and event["resources"]
    assert "get in touch with you soon" in event["message"]
    assert "with you here" not in event["message"]
