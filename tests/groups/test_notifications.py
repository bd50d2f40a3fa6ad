"""What groups announce reaches members as notifications, in their own time zone, once."""

import pytest

from community.models import Notification
from groups import services
from groups.models import Occurrence
from tests.factories import make_group, make_meeting, make_member, make_membership

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancelling_a_sitting_tells_each_member_in_their_own_time_but_not_the_facilitator(
    group, facilitator, member
):
    meeting = make_meeting(group, actor=facilitator, title="Tuesday circle")
    occurrence = Occurrence.objects.filter(meeting=meeting).first()

    services.cancel_occurrence(occurrence, actor=facilitator)

    note = Notification.objects.get(user=member, kind="meeting_changed")
    # 19:00 in London is 20:00 for Willow in Berlin.
    assert "Tuesday circle on" in note.title
    assert ", 20:00 is cancelled" in note.title
    assert "Evening circle" in note.body
    assert not Notification.objects.filter(user=facilitator).exists()


def test_moving_a_sitting_tells_members_the_new_time(group, facilitator, member):
    from datetime import timedelta

    meeting = make_meeting(group, actor=facilitator, title="Tuesday circle")
    occurrence = Occurrence.objects.filter(meeting=meeting).first()

    services.move_occurrence(
        occurrence, actor=facilitator, starts_at=occurrence.starts_at + timedelta(hours=1)
    )

    note = Notification.objects.get(user=member, kind="meeting_changed")
    assert note.title.endswith(", 21:00")
    assert "now meets at" in note.body


def test_a_welcomed_request_and_a_declined_one_each_get_one_kind_answer(facilitator):
    mornings = make_group(name="Morning circle", slug="morning-circle", join_policy="approval")
    make_membership(mornings, facilitator, role="facilitator")
    welcome, decline = make_member(), make_member()
    for person, approve in [(welcome, True), (decline, False)]:
        outcome = services.join_group(mornings, user=person, agreement_version=1)
        services.decide_join_request(outcome.request, actor=facilitator, approve=approve, note="")

    assert Notification.objects.get(user=welcome).title == "You're in “Morning circle”"
    declined = Notification.objects.get(user=decline)
    assert declined.title == "An answer about “Morning circle”"
    assert "can't offer you a place this time" in declined.body


def test_a_freed_seat_tells_the_first_person_waiting(facilitator):
    pair = make_group(name="Pair", slug="pair", capacity=2)
    make_membership(pair, facilitator, role="facilitator")
    leaving = make_member()
    make_membership(pair, leaving)
    waiting = make_member(time_zone="Europe/Berlin")
    assert services.join_group(pair, user=waiting, agreement_version=1).result == "waitlisted"

    services.leave_group(pair, user=leaving)

    note = Notification.objects.get(user=waiting, kind="seat_offered")
    assert note.title == "A place in “Pair” is held for you"
    assert "your time" in note.body
