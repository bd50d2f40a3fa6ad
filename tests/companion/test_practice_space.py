"""A member's practice space: a private room of kind ``practice`` where the companion answers
each of their messages after it commits, stored and ordered like any room's messages; nobody
else can read it, and it never appears where circles do."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community.errors import DomainError, NotFound, PermissionDenied
from community.services import erase_account, request_data_export
from companion.models import CompanionReply, PracticeSpace, ReplySource
from companion.services import (
    answer_practice_messages,
    answer_waiting_practice,
    clear_practice_space,
    open_practice_space,
    post_rehearsed_share,
)
from groups import selectors as group_selectors
from groups import services as group_services
from groups.models import Group, GroupKind, Membership, Message, MessageKind
from moderation import services as moderation
from moderation.models import QueueItem
from tests.companion.conftest import fresh, last_seq
from tests.factories import PASSWORD, make_meeting, make_member

pytestmark = pytest.mark.django_db


def test_opening_makes_a_private_room_with_the_member_as_its_only_member_and_a_greeting(
    member, space
):
    room = space.room
    assert room.kind == GroupKind.PRACTICE and not room.is_listed
    assert list(Membership.objects.filter(group=room).values_list("user", flat=True)) == [member.pk]
    greeting = Message.objects.get(group=room)
    assert (greeting.seq, greeting.kind, greeting.author) == (1, MessageKind.COMPANION, None)
    assert "a program, not a person" in greeting.body
    assert open_practice_space(member, actor=member) == space  # opening again: the same one


def test_only_the_member_opens_their_own_space(member, facilitator):
    with pytest.raises(PermissionDenied):
        open_practice_space(member, actor=facilitator)
    assert not PracticeSpace.objects.exists()


def test_each_member_message_gets_a_reply_stored_after_it_in_order(space, write):
    replies = write(space, "Grounding")
    assert len(replies) == 1 and "slow down together" in replies[0]
    write(space, "Breathe slowly")
    rows = list(Message.objects.filter(group=space.room).order_by("seq").values_list("seq", "kind"))
    assert rows == [
        (1, "companion"),
        (2, "text"),
        (3, "companion"),
        (4, "text"),
        (5, "companion"),
    ]
    assert fresh(space).answered_seq == 4
    assert fresh(space).step == "breathe"
    sources = set(CompanionReply.objects.values_list("source", flat=True))
    assert sources == {ReplySource.BUILT_IN}


def test_answering_twice_stores_nothing_more(space, write):
    write(space, "Grounding")
    before = last_seq(space)
    assert answer_practice_messages(space.room_id) == 0
    assert last_seq(space) == before


def test_a_reply_lost_after_commit_is_answered_by_the_beat_sweep(space, member):
    # Posted without running the after-commit hook: as if the worker died right after commit.
    group_services.post_message(space.room, author=member, client_id=uuid.uuid4(), body="hello")
    assert answer_waiting_practice(now=timezone.now()) == 0  # not waiting long enough yet
    later = timezone.now() + timedelta(minutes=1)
    assert answer_waiting_practice(now=later) == 1
    assert answer_waiting_practice(now=later) == 0  # safe to run twice


def test_a_rehearsed_share_is_saved_only_when_kept_and_posted_only_when_the_member_posts_it(
    space, member, group, write
):
    words = "I've been far away this week, and I'd like to say so."
    write(space, "Rehearse a share")
    write(space, words)
    assert fresh(space).draft == ""
    write(space, "Yes, keep it")
    saved = fresh(space)
    assert saved.draft == words and saved.draft_client_id is not None
    assert not Message.objects.filter(group=group).exists()  # never posted by itself

    posted = post_rehearsed_share(member, actor=member, group_slug=group.slug)
    assert (posted.group, posted.author, posted.body) == (group, member, words)
    again = post_rehearsed_share(member, actor=member, group_slug=group.slug)
    assert again.pk == posted.pk  # pressing twice posts it once
    assert fresh(space).draft_posted_to == group


def test_a_share_goes_only_to_the_members_own_circle_and_only_by_them(
    space, member, facilitator, write
):
    with pytest.raises(DomainError, match="no rehearsed share"):
        post_rehearsed_share(member, actor=member, group_slug="evening-circle")
    write(space, "Rehearse a share")
    write(space, "A small share.")
    write(space, "Yes, keep it")
    with pytest.raises(PermissionDenied):
        post_rehearsed_share(member, actor=facilitator, group_slug="evening-circle")
    elsewhere = Group.objects.create(
        name="Dawn circle", slug="dawn", topic="grief", description="", agreement="Be kind."
    )
    with pytest.raises(PermissionDenied):
        post_rehearsed_share(member, actor=member, group_slug=elsewhere.slug)
    with pytest.raises(NotFound):  # not a circle: its own practice room
        post_rehearsed_share(member, actor=member, group_slug=space.room.slug)


def test_who_can_i_reach_names_the_next_meeting_and_safe_persons_times_on_the_members_clock(
    space, member, facilitator, group, write
):
    make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=2)
    connection = group_services.accept_safe_person_invite(
        group_services.invite_safe_person(member, invitee=facilitator).pk, user=facilitator
    )
    from datetime import time

    group_services.set_availability(
        facilitator, windows=[{"days": [0, 1, 2, 3, 4], "start": time(18), "end": time(21)}]
    )
    reply = write(space, "Who can I reach?")[0]
    assert "Evening circle meets next on" in reply
    assert "Maple is usually around: Weekdays" in reply
    assert CompanionReply.objects.get(message__body=reply).about_others
    assert connection.room.kind == GroupKind.PAIR


def test_the_companion_rests_past_its_rate_limit_keeping_every_message(space, write, settings):
    settings.COMPANION_DAILY_CAP = 3
    for n in range(3):
        assert write(space, f"hello {n}")
    resting = write(space, "hello 3")
    assert resting and "rest until tomorrow" in resting[0]
    assert write(space, "hello 4") == []  # quiet now: no second notice
    member_words = Message.objects.filter(group=space.room, kind="text").count()
    assert member_words == 5  # nothing the member wrote was lost
    # Crisis language is answered even while it rests.
    assert "let a moderator know" in write(space, "I want to end it all")[0]


def test_a_practice_room_never_appears_where_circles_do(space, member, group, moderator):
    room = space.room
    assert room not in group_selectors.directory_groups()
    assert room.pk not in [m.group_id for m in group_selectors.my_memberships(member)]
    with pytest.raises(NotFound):
        group_selectors.get_group(room.slug)
    assert group_selectors.invitable_people(member) == []
    client = Client()
    client.force_login(member)
    assert client.get(reverse("groups:detail", args=[room.slug])).status_code == 404
    assert client.get(reverse("groups:meetings", args=[room.slug])).status_code == 404
    directory = client.get(reverse("groups:directory")).content.decode()
    assert room.slug not in directory and "Practice space" not in directory.split("<main")[1]
    assert client.get(reverse("groups:room", args=[room.slug])).url == reverse("companion:practice")
    from django.contrib import admin

    from groups.admin import GroupAdmin

    request = type("R", (), {"user": moderator})()
    listed = GroupAdmin(Group, admin.site).get_queryset(request)
    assert room not in listed and group in listed


def test_nobody_else_reads_or_enters_a_practice_room(space, facilitator, moderator, group):
    for other in (facilitator, moderator):
        with pytest.raises(PermissionDenied):
            group_selectors.access_room(space.room.slug, other)
        client = Client()
        client.force_login(other)
        history = reverse("groups:room_history", args=[space.room.slug]) + "?before=99"
        assert client.get(history).status_code == 403


def test_practice_messages_are_never_held_flagged_or_reported(space, member, write):
    write(space, "You can call me on 07700 900123 any evening.")  # held in a circle
    write(space, "Honestly, nobody likes you in this circle.")  # flagged in a circle
    assert not QueueItem.objects.exists()
    assert not Message.objects.filter(group=space.room, held_at__isnull=False).exists()
    reply = Message.objects.filter(group=space.room, kind="companion").last()
    with pytest.raises(NotFound):
        moderation.report_message(reply, reporter=member, category="other")


def test_clearing_deletes_the_conversation_and_the_share_and_starts_fresh(space, member, write):
    write(space, "Rehearse a share")
    write(space, "Something tender.")
    write(space, "Yes, keep it")
    room_id = space.room_id
    assert clear_practice_space(member, actor=member)
    assert not Message.objects.filter(group_id=room_id).exists()
    assert not PracticeSpace.objects.exists() and not Group.objects.filter(pk=room_id).exists()
    assert not clear_practice_space(member, actor=member)  # nothing left: nothing to do
    again = open_practice_space(member, actor=member)
    assert again.room_id != room_id and again.draft == ""


def test_clearing_waits_while_a_moderator_looks_at_a_crisis_item_from_it(
    space, member, moderator, write
):
    write(space, "I can't go on anymore, I just want it all to stop.")
    write(space, "Yes, please tell a moderator")
    item = QueueItem.objects.get(kind="crisis")
    with pytest.raises(DomainError, match="still looking"):
        clear_practice_space(member, actor=member)
    moderation.claim_item(item, moderator=moderator)
    moderation.resolve_item(item, actor=moderator, reason="Reached out; they're safe for now.")
    assert clear_practice_space(member, actor=member)
    # Moderation's history still adds up; the words are gone.
    words = Message.objects.filter(group_id=space.room_id).exclude(body="")
    assert not words.exists()
    assert QueueItem.objects.filter(pk=item.pk).exists()


def test_erasing_the_account_erases_the_practice_space_whatever_was_chosen(space, member, write):
    write(space, "Rehearse a share")
    write(space, "canary-practice-7731 is what I'd say.")
    write(space, "Yes, keep it")
    room_id = space.room_id
    assert erase_account(member, password=PASSWORD, keep_messages=True)
    assert not Group.objects.filter(pk=room_id).exists()
    assert not Message.objects.filter(body__contains="canary-practice-7731").exists()
    assert not PracticeSpace.objects.exists()


def test_the_members_export_holds_their_practice_conversation_and_share(space, member, write):
    write(space, "Rehearse a share")
    write(space, "A few true words.")
    write(space, "Yes, keep it")
    export = request_data_export(member, actor=member)
    rows = export.content["sections"]["practice_space"]
    assert [r["kind"] for r in rows[:4]] == ["companion", "yours", "companion", "yours"]
    assert rows[3]["text"] == "A few true words."
    assert rows[-1]["kind"] == "rehearsed share" and rows[-1]["text"] == "A few true words."
    other = make_member(display_name="Rowan")
    assert request_data_export(other, actor=other).content["sections"]["practice_space"] == []
