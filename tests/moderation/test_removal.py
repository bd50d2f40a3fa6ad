"""Removing a member frees their seat for the first person on the waitlist."""

import pytest

from groups import services as group_services
from groups.models import Membership, WaitlistEntry
from moderation import services
from moderation.models import QueueItem
from tests.factories import fill_group, make_member
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db


def test_removing_a_member_offers_the_freed_seat_to_the_first_person_waiting(
    group, member, moderator
):
    fill_group(group)
    first, second = make_member(display_name="Alder"), make_member(display_name="Birch")
    for person in (first, second):
        outcome = group_services.join_group(group, user=person, agreement_version=1)
        assert outcome.result == "waitlisted"
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)

    services.remove_member(item, actor=moderator, reason="Repeated hostility after a warning.")

    assert Membership.objects.get(group=group, user=member).status == "removed"
    assert WaitlistEntry.objects.get(user=first).status == "offered"
    assert WaitlistEntry.objects.get(user=second).status == "waiting"


def test_a_refused_removal_offers_no_seat(group, member, moderator):
    fill_group(group)
    waiting = make_member(display_name="Alder")
    group_services.join_group(group, user=waiting, agreement_version=1)
    item = item_for(post(group, member, FLAGGED))  # not claimed

    with pytest.raises(Exception, match="Please claim this item"):
        services.remove_member(item, actor=moderator, reason="Repeated hostility.")

    assert WaitlistEntry.objects.get(user=waiting).status == "waiting"
    assert Membership.objects.get(group=group, user=member).status == "active"


def test_a_removed_member_gets_no_more_reminders_and_a_welcomed_back_one_does_again(
    group, member, facilitator, moderator
):
    from groups.models import Reminder
    from tests.factories import make_meeting

    make_meeting(group, actor=facilitator)
    assert Reminder.objects.filter(user=member, status="pending").exists()

    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    removal = services.remove_member(item, actor=moderator, reason="Repeated hostility.")
    assert not Reminder.objects.filter(user=member, status="pending").exists()

    appeal = services.submit_appeal(removal, member=member, text="I'm sorry; I'll pause first.")
    appeal_item = services.claim_item(QueueItem.objects.get(appeal=appeal), moderator=moderator)
    services.reinstate_member(appeal_item, actor=moderator, reason="Welcome back.")
    assert Reminder.objects.filter(user=member, status="pending").exists()
