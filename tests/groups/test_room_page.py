"""``selectors.room_page``: the room page's messages, position and boundaries in two queries,
the same as the ORM selectors give one by one, for every kind of message and reader."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from community.errors import NotFound, PermissionDenied
from community.models import User
from groups import selectors, services
from groups.models import CheckIn, Membership, Message
from groups.services.boundaries import set_content_boundaries
from groups.services.checkins import record_check_in
from groups.services.people import block_member, mute_member
from tests.factories import make_member, make_membership


def post(group, user, body="", **extra):
    return services.post_message(
        group, author=user, client_id=uuid.uuid4(), body=body, **extra
    ).message


def the_orm_way(membership, reader, *, limit=selectors.HISTORY_PAGE_SIZE):
    """What the room page read before ``room_page``: position, payloads, frames."""
    position = selectors.latest_position(membership.group)
    payloads, has_more = selectors.messages_before(membership, limit=limit)
    soften = selectors.content_boundaries(reader)
    muted, _blocked_by = selectors.mutes_and_blockers(reader.pk)
    frames = [
        selectors.frame_for_viewer(p, viewer_id=reader.pk, soften=soften, muted=muted)
        for p in payloads
    ]
    return position, frames, has_more


def a_busy_room(group, facilitator, member):
    """Every kind of message a reader may see differently, from several people."""
    muted, blocked, gone = make_member(), make_member(), make_member()
    for person in (muted, blocked, gone):
        make_membership(group, person)
    mute_member(member, other=muted)
    block_member(member, other=blocked)
    set_content_boundaries(member, actor=member, topics=["grief"])

    plain = post(group, facilitator, "Welcome, everyone. See https://example.test/a?b=1&c=2.")
    post(group, member, "My own words about grief and loss.")
    post(group, muted, "Words from someone muted.")
    post(group, blocked, "Words from someone blocked.")
    post(group, facilitator, "The anniversary, the grief of it.")  # softened for member
    noted = post(group, facilitator, "Hard day", content_warning="grief")  # a note naming one
    post(group, muted, "Hard day", content_warning="a long story")  # a note naming none
    services.send_wave(group, user=facilitator, client_id=uuid.uuid4())
    held_other = post(group, facilitator, "Held for a moderator.")
    held_own = post(group, member, "My held words.")
    Message.objects.filter(pk__in=[held_other.pk, held_own.pk]).update(held_at=timezone.now())
    hidden = post(group, blocked, "Hidden by the moderators.")
    Message.objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    deleted = post(group, member, "Taken back.")
    services.delete_message(group, actor=member, seq=deleted.seq)
    erased = post(group, gone, "Words of someone who left the site.")
    Message.objects.filter(pk=erased.pk).update(author=None)
    record_check_in(member, group=group, presence=3, feelings=["calm", "tired"], audience="group")
    card_gone = record_check_in(
        facilitator, group=group, presence=2, feelings=[], note="a note", audience="group"
    )
    CheckIn.objects.filter(pk=card_gone.pk).delete()  # its card is gone, its message stays
    for reader, kind in ((member, "heart"), (facilitator, "heart"), (muted, "me_too")):
        services.toggle_reaction(group, user=reader, seq=plain.seq, reaction=kind)
    services.toggle_reaction(group, user=member, seq=noted.seq, reaction="strength")
    return [muted, blocked]


def test_room_page_is_what_the_orm_selectors_give_for_every_reader(group, facilitator, member):
    others = a_busy_room(group, facilitator, member)
    for reader in (member, facilitator, *others):
        reader = User.objects.get(pk=reader.pk)
        membership = selectors.access_room(group.slug, reader)
        page = selectors.room_page(membership, reader)
        position, frames, has_more = the_orm_way(membership, reader)
        assert page.position == position
        assert page.has_more == has_more
        assert page.frames == frames
    # The reader's own view really differs: folded, muted, held, their own.
    page = selectors.room_page(selectors.access_room(group.slug, member), member)
    assert any(f.get("muted_author") for f in page.frames)
    assert any(f["softened"] for f in page.frames)
    assert any(f["own"] and f["held"] for f in page.frames)


def test_room_page_pages_like_messages_before_and_shows_only_since_joining(
    group, facilitator, member
):
    for n in range(7):
        post(group, facilitator if n % 2 else member, f"Words {n}")
    newcomer = make_member()
    later = make_membership(group, newcomer, joined_at=timezone.now() + timedelta(seconds=1))
    for reader, membership in (
        (member, selectors.access_room(group.slug, member)),
        (newcomer, later),
    ):
        for limit in (3, 7, 50):
            page = selectors.room_page(membership, reader, limit=limit)
            assert (page.position, page.frames, page.has_more) == the_orm_way(
                membership, reader, limit=limit
            )
    # Nothing posted since the newcomer joined: no messages, but the room's position.
    page = selectors.room_page(later, newcomer)
    assert page.frames == [] and page.position.seq == 7


def test_room_page_reads_two_queries_however_many_messages(group, facilitator, member):
    for n in range(8):
        post(group, facilitator if n % 2 else member, f"Words {n}")
    membership = selectors.access_room(group.slug, member)
    with CaptureQueriesContext(connection) as queries:
        selectors.room_page(membership, member)
    assert len(queries) == 2


def test_access_room_reads_the_membership_and_group_the_orm_reads(group, member, outsider):
    found = selectors.access_room(group.slug, member)
    expected = Membership.objects.select_related("group").get(group=group, user=member)
    fields = Membership._meta.concrete_fields
    assert [f.value_from_object(found) for f in fields] == [
        f.value_from_object(expected) for f in fields
    ]
    assert [f.value_from_object(found.group) for f in group._meta.concrete_fields] == [
        f.value_from_object(expected.group) for f in group._meta.concrete_fields
    ]
    assert Membership.group.is_cached(found)
    with pytest.raises(PermissionDenied):
        selectors.access_room(group.slug, outsider)
    with pytest.raises(NotFound):
        selectors.access_room("no-such-room", member)
