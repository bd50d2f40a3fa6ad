"""Safe persons: invitations only between people who share a circle, nothing until accepted, a
quiet decline, a cap and an expiry; accepting makes one private pair room (crossing and racing
acceptances included); ending closes it for both; availability on the viewer's clock; a status
seen only by safe persons and facilitators, ending by itself; pairs never appear as circles."""

import uuid
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import Block, Notification
from groups import selectors, services
from groups.models import (
    AvailabilityWindow,
    Group,
    Membership,
    Message,
    SafeConnection,
    SafePersonInvite,
    SafeStatus,
)
from groups.tasks import task_expire_safe_person_invites
from tests.concurrency import race
from tests.factories import make_group, make_member, make_membership

pytestmark = pytest.mark.django_db


def snapshot():
    """Everything the safe-person services could have written."""
    return (
        list(SafePersonInvite.objects.order_by("pk").values_list("pk", "status", "answered_at")),
        list(SafeConnection.objects.order_by("pk").values_list("pk", "ended_at")),
        Group.objects.count(),
        Membership.objects.count(),
        list(Group.objects.order_by("pk").values_list("pk", "archived_at")),
        Notification.objects.count(),
        list(SafeStatus.objects.values_list("user_id", "text", "expires_at")),
        AvailabilityWindow.objects.count(),
    )


def connect(a, b):
    """``a`` invites ``b``, who accepts: their connection."""
    invite = services.invite_safe_person(a, invitee=b)
    return services.accept_safe_person_invite(invite.pk, user=b)


def post(group, user, body="Hello"):
    return services.post_message(group, author=user, client_id=uuid.uuid4(), body=body)


@pytest.fixture
def rowan(group):
    """Another member of the Evening circle."""
    user = make_member(display_name="Rowan", email="rowan@example.test")
    make_membership(group, user)
    return user


# --- Inviting ---------------------------------------------------------------------------------


def test_an_invitation_waits_for_the_invitee_and_tells_them_and_nobody_else(
    group, member, facilitator
):
    invite = services.invite_safe_person(member, invitee=facilitator, note="  Tea sometime?  ")

    assert invite.status == "pending"
    assert invite.note == "Tea sometime?"
    assert invite.via_group == group
    assert invite.expires_at - invite.created_at == timedelta(days=14)
    assert not SafeConnection.objects.exists()
    told = Notification.objects.get()
    assert told.user == facilitator
    assert told.kind == "safe_person"
    assert "Willow" in told.title
    assert told.url == reverse("groups:safe_persons")
    assert selectors.invitations_for_me(facilitator) == [
        {
            "id": invite.pk,
            "name": "Willow",
            "note": "Tea sometime?",
            "circle": "Evening circle",
            "expires_at": invite.expires_at,
        }
    ]
    assert selectors.invitations_sent(member)[0]["label"] == "Not accepted yet"


def test_inviting_yourself_is_refused_kindly_and_changes_nothing(group, member):
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.invite_safe_person(member, invitee=member)
    assert refused.value.code == "self_invite"
    assert snapshot() == before


def test_inviting_someone_you_share_no_circle_with_is_refused(group, member, outsider):
    gone = make_group(name="Old circle", archived_at=timezone.now())
    make_membership(gone, member)
    make_membership(gone, outsider)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.invite_safe_person(member, invitee=outsider)
    assert refused.value.code == "no_shared_circle"
    assert "share a circle" in refused.value.message
    assert snapshot() == before


def test_a_pair_room_is_not_a_shared_circle(group, member, facilitator, outsider):
    """Two safe persons who no longer share a circle can't invite each other through their
    pair room."""
    connection = connect(member, facilitator)
    services.end_safe_connection(connection.pk, actor=member)
    Membership.objects.filter(group=group, user=facilitator).update(status="left")
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.invite_safe_person(member, invitee=facilitator)
    assert refused.value.code == "no_shared_circle"
    assert snapshot() == before


@pytest.mark.parametrize("who_blocked", ["inviter", "invitee"])
def test_a_block_either_way_refuses_with_the_same_words(group, member, facilitator, who_blocked):
    if who_blocked == "inviter":
        Block.objects.create(user=member, blocked=facilitator)
    else:
        Block.objects.create(user=facilitator, blocked=member)
    before = snapshot()
    with pytest.raises(PermissionDenied) as refused:
        services.invite_safe_person(member, invitee=facilitator)
    assert refused.value.code == "cannot_invite"
    assert refused.value.message == "You can't invite this person right now."
    assert snapshot() == before
    assert selectors.invitable_people(member) == []


def test_at_most_three_invitations_wait_at_once_and_a_quiet_decline_still_counts(
    group, member, facilitator, rowan
):
    others = [facilitator, rowan, make_membership(group, make_member()).user]
    invites = [services.invite_safe_person(member, invitee=o) for o in others]
    services.decline_safe_person_invite(invites[0].pk, user=facilitator)
    fourth = make_membership(group, make_member()).user
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        services.invite_safe_person(member, invitee=fourth)
    assert refused.value.code == "too_many_invites"
    assert snapshot() == before

    services.withdraw_safe_person_invite(invites[1].pk, user=member)
    services.invite_safe_person(member, invitee=fourth)  # a place is free again


def test_inviting_the_same_person_twice_is_refused_even_after_they_quietly_declined(
    group, member, facilitator
):
    invite = services.invite_safe_person(member, invitee=facilitator)
    for step in (None, "decline"):
        if step:
            services.decline_safe_person_invite(invite.pk, user=facilitator)
        before = snapshot()
        with pytest.raises(DomainError) as refused:
            services.invite_safe_person(member, invitee=facilitator)
        assert refused.value.code == "already_invited"
        assert snapshot() == before


def test_inviting_your_safe_person_again_is_refused(group, member, facilitator):
    connect(member, facilitator)
    before = snapshot()
    for a, b in [(member, facilitator), (facilitator, member)]:
        with pytest.raises(DomainError) as refused:
            services.invite_safe_person(a, invitee=b)
        assert refused.value.code == "already_connected"
    assert snapshot() == before


def test_a_note_too_long_is_refused(group, member, facilitator):
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.invite_safe_person(member, invitee=facilitator, note="x" * 201)
    assert refused.value.code == "bad_note"
    assert snapshot() == before


# --- Answering --------------------------------------------------------------------------------


def test_accepting_makes_a_private_pair_room_for_exactly_the_two(group, member, facilitator):
    invite = services.invite_safe_person(member, invitee=facilitator)
    connection = services.accept_safe_person_invite(invite.pk, user=facilitator)

    invite.refresh_from_db()
    assert invite.status == "accepted"
    assert invite.answered_at is not None
    room = connection.room
    assert room.kind == "pair"
    assert not room.is_listed
    assert room.capacity == 2
    assert room.join_policy == "invite"
    assert room.agreement_versions.get().version == 1
    memberships = Membership.objects.filter(group=room)
    assert {m.user for m in memberships} == {member, facilitator}
    assert all(m.is_active and m.agreement_is_current() and m.role == "member" for m in memberships)
    assert {connection.user_low, connection.user_high} == {member, facilitator}
    # The inviter hears that it was accepted.
    told = Notification.objects.filter(user=member).get()
    assert "Maple" in told.title
    assert [v.name for v in selectors.my_safe_persons(member)] == ["Maple"]
    assert [v.name for v in selectors.my_safe_persons(facilitator)] == ["Willow"]
    assert selectors.invitations_for_me(facilitator) == []


def test_a_decline_is_invisible_to_the_inviter_until_the_invitation_expires(
    group, member, facilitator
):
    invite = services.invite_safe_person(member, invitee=facilitator)
    pending_view = selectors.invitations_sent(member)
    services.decline_safe_person_invite(invite.pk, user=facilitator)

    assert selectors.invitations_sent(member) == pending_view
    assert pending_view[0]["label"] == "Not accepted yet"
    assert pending_view[0]["can_withdraw"]
    assert not Notification.objects.filter(user=member).exists()
    assert selectors.invitations_for_me(facilitator) == []

    later = timezone.now() + timedelta(days=15)
    assert selectors.invitations_sent(member, now=later)[0]["label"] == "Expired"


def test_accepting_an_expired_withdrawn_answered_or_someone_elses_invitation_is_refused(
    group, member, facilitator, rowan
):
    expired = services.invite_safe_person(member, invitee=facilitator)
    SafePersonInvite.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    withdrawn = services.invite_safe_person(rowan, invitee=facilitator)
    services.withdraw_safe_person_invite(withdrawn.pk, user=rowan)
    declined = services.invite_safe_person(member, invitee=rowan)
    services.decline_safe_person_invite(declined.pk, user=rowan)
    before = snapshot()

    cases = [
        (expired.pk, facilitator, DomainError, "invite_expired"),
        (withdrawn.pk, facilitator, DomainError, "invite_withdrawn"),
        (declined.pk, rowan, DomainError, "invite_answered"),
        (declined.pk, member, NotFound, "invite_not_found"),  # the inviter's own
        (expired.pk, rowan, NotFound, "invite_not_found"),  # someone else's
        (999_999, facilitator, NotFound, "invite_not_found"),
    ]
    for invite_id, user, error, code in cases:
        with pytest.raises(error) as refused:
            services.accept_safe_person_invite(invite_id, user=user)
        assert refused.value.code == code, (invite_id, user)
        assert refused.value.message
    for invite_id, user, error, code in cases[:2]:
        with pytest.raises(error) as refused:
            services.decline_safe_person_invite(invite_id, user=user)
        assert refused.value.code == code
    assert snapshot() == before


def test_accepting_after_a_block_is_refused_without_saying_who_blocked(group, member, facilitator):
    invite = services.invite_safe_person(member, invitee=facilitator)
    Block.objects.create(user=member, blocked=facilitator)
    before = snapshot()
    with pytest.raises(PermissionDenied) as refused:
        services.accept_safe_person_invite(invite.pk, user=facilitator)
    assert refused.value.code == "cannot_accept"
    assert snapshot() == before
    assert selectors.invitations_for_me(facilitator) == []


def test_only_the_inviter_withdraws_and_only_while_it_waits(group, member, facilitator):
    invite = services.invite_safe_person(member, invitee=facilitator)
    before = snapshot()
    with pytest.raises(NotFound):
        services.withdraw_safe_person_invite(invite.pk, user=facilitator)
    assert snapshot() == before

    services.withdraw_safe_person_invite(invite.pk, user=member)
    assert selectors.invitations_sent(member) == []
    assert selectors.invitations_for_me(facilitator) == []
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.withdraw_safe_person_invite(invite.pk, user=member)
    assert refused.value.code == "invite_not_open"
    assert snapshot() == before


def test_invitations_expire_after_fourteen_days_and_the_task_is_safe_to_run_twice(
    group, member, facilitator, rowan
):
    old = services.invite_safe_person(member, invitee=facilitator)
    old_declined = services.invite_safe_person(member, invitee=rowan)
    services.decline_safe_person_invite(old_declined.pk, user=rowan)
    SafePersonInvite.objects.filter(pk__in=[old.pk, old_declined.pk]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    fresh = services.invite_safe_person(rowan, invitee=facilitator)

    assert task_expire_safe_person_invites() == 2
    assert task_expire_safe_person_invites() == 0
    statuses = dict(SafePersonInvite.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", old_declined.pk: "expired", fresh.pk: "pending"}
    assert [i["label"] for i in selectors.invitations_sent(member)] == ["Expired", "Expired"]
    # A lapsed invitation frees its place: a fresh one may be sent.
    services.invite_safe_person(member, invitee=facilitator)


def test_an_invitation_past_its_expiry_that_the_beat_missed_doesnt_block_a_new_one(
    group, member, facilitator
):
    old = services.invite_safe_person(member, invitee=facilitator)
    SafePersonInvite.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert selectors.invitations_for_me(facilitator) == []
    new = services.invite_safe_person(member, invitee=facilitator)
    old.refresh_from_db()
    assert (old.status, new.status) == ("expired", "pending")


def test_crossing_invitations_make_one_connection_whichever_is_accepted(group, member, facilitator):
    mine = services.invite_safe_person(member, invitee=facilitator)
    theirs = services.invite_safe_person(facilitator, invitee=member)

    connection = services.accept_safe_person_invite(theirs.pk, user=member)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.accept_safe_person_invite(mine.pk, user=facilitator)
    assert refused.value.code == "invite_answered"
    assert snapshot() == before
    assert list(SafeConnection.objects.all()) == [connection]
    assert set(SafePersonInvite.objects.values_list("status", flat=True)) == {"accepted"}


@pytest.mark.django_db(transaction=True)
def test_two_crossing_acceptances_at_the_same_moment_make_one_connection(
    group, member, facilitator
):
    mine = services.invite_safe_person(member, invitee=facilitator)
    theirs = services.invite_safe_person(facilitator, invitee=member)

    outcomes = race(
        lambda: services.accept_safe_person_invite(mine.pk, user=facilitator),
        lambda: services.accept_safe_person_invite(theirs.pk, user=member),
    )

    made = [o for o in outcomes if isinstance(o, SafeConnection)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(made) == 1
    assert len(refused) == 1
    assert refused[0].code in {"invite_answered", "already_connected"}
    assert SafeConnection.objects.count() == 1
    assert Group.objects.filter(kind="pair").count() == 1


# --- Ending -----------------------------------------------------------------------------------


def test_either_side_ends_it_and_the_room_closes_for_both_but_stays_readable(
    group, member, facilitator
):
    connection = connect(member, facilitator)
    room = connection.room
    post(room, member, "Thank you for today.")
    services.set_safe_status(member, text="I feel distant right now", hours=4)

    services.end_safe_connection(connection.pk, actor=facilitator)

    connection.refresh_from_db()
    room.refresh_from_db()
    assert connection.ended_at is not None
    assert room.is_archived
    for user in (member, facilitator):
        with pytest.raises(DomainError) as refused:
            post(room, user, "Are you there?")
        assert refused.value.code == "connection_ended"
        assert "ended" in refused.value.message
        pair = selectors.access_pair_room(room.slug, user)
        assert not pair.live
        payloads, _more = selectors.messages_before(pair.membership)
        assert [p["body"] for p in payloads] == ["Thank you for today."]
    assert Message.objects.count() == 1
    # Willow sees only that it ended: no status, no availability, no reason.
    (view,) = selectors.my_safe_persons(member)
    assert (view.live, view.status, view.availability) == (False, "", [])
    assert selectors.access_pair_room(room.slug, facilitator).other.status == ""
    assert not Notification.objects.filter(user=member, title__icontains="ended").exists()


def test_ending_twice_or_someone_elses_connection_is_refused(group, member, facilitator, rowan):
    connection = connect(member, facilitator)
    before = snapshot()
    with pytest.raises(NotFound):
        services.end_safe_connection(connection.pk, actor=rowan)
    assert snapshot() == before
    services.end_safe_connection(connection.pk, actor=member)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.end_safe_connection(connection.pk, actor=facilitator)
    assert refused.value.code == "already_ended"
    assert snapshot() == before


def test_ending_the_connection_between_two_people_for_the_block_service(
    group, member, facilitator, rowan
):
    assert services.end_safe_connection_with(member, other=rowan, actor=member) is None
    connection = connect(member, facilitator)
    ended = services.end_safe_connection_with(member, other=facilitator, actor=member)
    assert ended.pk == connection.pk
    assert ended.ended_at is not None
    assert services.end_safe_connection_with(member, other=facilitator, actor=member) is None
    with pytest.raises(PermissionDenied):
        services.end_safe_connection_with(member, other=facilitator, actor=rowan)


def test_after_ending_the_two_may_choose_each_other_again_in_a_new_room(group, member, facilitator):
    first = connect(member, facilitator)
    services.end_safe_connection(first.pk, actor=member)
    second = connect(facilitator, member)
    assert second.room_id != first.room_id
    assert [v.live for v in selectors.my_safe_persons(member)] == [True, False]


# --- Availability and status ------------------------------------------------------------------


def test_availability_is_shown_on_the_viewers_clock():
    windows = [
        AvailabilityWindow(days=[0, 1, 2, 3, 4], start=time(19), end=time(21)),
        AvailabilityWindow(days=[0], start=time(0, 30), end=time(1, 30)),  # Monday small hours
    ]
    berlin, utc = ZoneInfo("Europe/Berlin"), ZoneInfo("UTC")
    winter_monday = date(2026, 1, 5)

    shown = selectors.availability_for_viewer(
        windows, owner_zone=berlin, viewer_zone=utc, today=winter_monday
    )

    assert [w["label"] for w in shown] == [
        "Weekdays, 6 p.m. to 8 p.m.",
        "Sun, 11:30 p.m. to 12:30 a.m.",
    ]
    summer = selectors.availability_for_viewer(
        windows[:1], owner_zone=berlin, viewer_zone=utc, today=date(2026, 7, 6)
    )
    assert summer[0]["label"] == "Weekdays, 5 p.m. to 7 p.m."


def test_a_safe_person_sees_the_others_availability_converted(group, member, facilitator):
    services.set_availability(
        member, windows=[{"days": [5, 6], "start": time(10), "end": time(12)}]
    )
    connect(member, facilitator)
    (view,) = selectors.my_safe_persons(facilitator)  # Maple is on UTC, Willow in Berlin
    assert view.availability[0]["days"] == "Weekends"
    assert view.availability[0]["start"] in {"9 a.m.", "8 a.m."}
    assert view.other_zone_differs
    assert selectors.my_availability(member)[0]["label"] == "Weekends, 10 a.m. to noon"


@pytest.mark.parametrize(
    ("windows", "code"),
    [
        ([{"days": [], "start": time(9), "end": time(10)}], "bad_days"),
        ([{"days": [7], "start": time(9), "end": time(10)}], "bad_days"),
        ([{"days": [True], "start": time(9), "end": time(10)}], "bad_days"),
        ([{"days": [1], "start": "9", "end": time(10)}], "bad_times"),
        ([{"days": [1], "start": time(9), "end": time(9)}], "empty_window"),
        ([{"days": [1]}], "bad_window"),
        ([{"days": [1], "start": time(9), "end": time(10)}] * 8, "too_many_windows"),
    ],
)
def test_bad_availability_is_refused_and_changes_nothing(member, windows, code):
    services.set_availability(member, windows=[{"days": [0], "start": time(8), "end": time(9)}])
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.set_availability(member, windows=windows)
    assert refused.value.code == code
    assert snapshot() == before


def test_a_status_is_seen_by_safe_persons_and_facilitators_only(
    group, member, facilitator, rowan, outsider
):
    heron = make_membership(group, outsider).user
    connect(member, heron)
    services.set_safe_status(member, text="I feel distant right now", hours=1)

    (view,) = selectors.my_safe_persons(heron)
    assert view.status == "I feel distant right now"
    assert [s["text"] for s in selectors.statuses_for_facilitator(facilitator)] == [
        "I feel distant right now"
    ]
    assert selectors.statuses_for_facilitator(facilitator)[0]["circles"] == ["Evening circle"]
    assert selectors.may_see_status(heron, member)
    assert selectors.may_see_status(facilitator, member)
    assert not selectors.may_see_status(rowan, member)  # another member of the circle
    assert selectors.statuses_for_facilitator(rowan) == []
    assert selectors.my_safe_persons(rowan) == []


def test_a_status_ends_by_itself_and_can_be_taken_down(group, member, facilitator):
    connect(member, facilitator)
    status = services.set_safe_status(member, text="Quiet today", hours=4)
    assert status.expires_at - status.set_at == timedelta(hours=4)

    in_five_hours = timezone.now() + timedelta(hours=5)
    assert selectors.my_safe_persons(facilitator, now=in_five_hours)[0].status == ""
    assert selectors.statuses_for_facilitator(facilitator, now=in_five_hours) == []
    assert selectors.my_safe_status(member, now=in_five_hours) is None

    services.set_safe_status(member, text="Better now", hours=1)  # replaces, one per person
    assert SafeStatus.objects.get(user=member).text == "Better now"
    assert services.clear_safe_status(member)
    assert selectors.my_safe_persons(facilitator)[0].status == ""


@pytest.mark.parametrize(
    ("text_", "hours", "code"),
    [
        ("", 1, "empty_status"),
        ("   ", 1, "empty_status"),
        ("x" * 81, 1, "status_too_long"),
        ("Fine", 2, "bad_hours"),
        ("Fine", True, "bad_hours"),
    ],
)
def test_a_bad_status_is_refused_and_changes_nothing(member, text_, hours, code):
    services.set_safe_status(member, text="Here", hours=1)
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        services.set_safe_status(member, text=text_, hours=hours)
    assert refused.value.code == code
    assert snapshot() == before
