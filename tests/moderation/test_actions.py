from datetime import timedelta

import pytest
from django.utils import timezone

from community.errors import DomainError
from community.models import Notification
from groups.models import Membership, Message
from groups.selectors.chat import frame_for_viewer, message_payloads
from moderation import services
from moderation.models import AuditEntry, ModerationAction, QueueItem
from tests.factories import make_member
from tests.moderation.conftest import FLAGGED, HELD, item_for, post

pytestmark = pytest.mark.django_db

REASON = "This could hurt people in the group."


def test_hiding_a_message_keeps_it_and_tells_the_author_why(group, member, moderator):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)

    services.hide_message(item, actor=moderator, reason=REASON)

    message.refresh_from_db()
    assert message.hidden_at is not None
    assert message.body == FLAGGED  # kept for moderators
    assert message.rev > 0  # numbered as a change: every open room gets an update
    payload = message_payloads([Message.objects.select_related("author").get(pk=message.pk)])[0]
    assert payload["hidden"] and payload["body"] == ""
    item.refresh_from_db()
    assert (item.status, item.resolution) == ("closed", "hide")
    note = Notification.objects.get(user=member, kind="moderation_action")
    assert REASON in note.body
    assert AuditEntry.objects.filter(action="hide", target_id=message.pk, reason=REASON).exists()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_an_action_without_a_reason_is_refused_and_changes_nothing(
    group, member, moderator, reason
):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)
    with pytest.raises(DomainError) as error:
        services.hide_message(item, actor=moderator, reason=reason)
    assert error.value.code == "reason_required"
    message.refresh_from_db()
    assert message.hidden_at is None
    assert QueueItem.objects.get(pk=item.pk).status == "claimed"


def test_acting_on_an_unclaimed_item_is_refused_and_changes_nothing(group, member, moderator):
    message = post(group, member, FLAGGED)
    item = item_for(message)
    with pytest.raises(DomainError) as error:
        services.hide_message(item, actor=moderator, reason=REASON)
    assert error.value.code == "not_claimed"
    message.refresh_from_db()
    assert message.hidden_at is None
    assert not ModerationAction.objects.exists()
    assert not AuditEntry.objects.filter(action="hide").exists()


def test_acting_on_someone_elses_claim_is_refused(group, member, moderator):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)
    other = make_member(is_staff=True)
    with pytest.raises(DomainError) as error:
        services.warn_member(item, actor=other, reason=REASON)
    assert error.value.code == "not_claimed"
    assert not ModerationAction.objects.exists()


def test_acting_on_a_closed_item_is_refused(group, member, moderator):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)
    services.resolve_item(item, actor=moderator, reason="Nothing to do here.")
    with pytest.raises(DomainError) as error:
        services.hide_message(item, actor=moderator, reason=REASON)
    assert error.value.code == "item_closed"
    message.refresh_from_db()
    assert message.hidden_at is None


def test_a_held_message_is_seen_only_by_its_author_until_approved(
    group, member, facilitator, moderator
):
    message = post(group, member, HELD)
    assert message.held_at is not None
    item = item_for(message, "held")
    payload = message_payloads([Message.objects.select_related("author").get(pk=message.pk)])[0]
    mine = frame_for_viewer(payload, viewer_id=member.pk)
    theirs = frame_for_viewer(payload, viewer_id=facilitator.pk)
    assert mine["held"] and mine["body"] == HELD
    assert theirs["held"] and theirs["body"] == "" and theirs["author"] == {"name": ""}

    services.claim_item(item, moderator=moderator)
    services.approve_held(item, actor=moderator, reason="Shared with care; fine to show.")

    payload = message_payloads([Message.objects.select_related("author").get(pk=message.pk)])[0]
    assert not payload["held"]
    assert frame_for_viewer(payload, viewer_id=facilitator.pk)["body"] == HELD


def test_a_rejected_held_message_stays_hidden_from_the_room(group, member, moderator):
    message = post(group, member, HELD)
    item = services.claim_item(item_for(message, "held"), moderator=moderator)
    services.reject_held(item, actor=moderator, reason="Please don't share phone numbers here.")
    message.refresh_from_db()
    assert message.hidden_at is not None
    assert "phone numbers" in Notification.objects.get(user=member).body


def test_warning_a_member_is_a_private_note(group, member, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    services.warn_member(item, actor=moderator, reason=REASON)
    assert ModerationAction.objects.get().kind == "warn"
    assert REASON in Notification.objects.get(user=member).body


@pytest.mark.parametrize("duration", [None, timedelta(0), timedelta(minutes=-5), 30])
def test_a_mute_with_no_end_or_a_negative_duration_is_refused(group, member, moderator, duration):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    with pytest.raises(DomainError) as error:
        services.mute_member(item, actor=moderator, reason=REASON, duration=duration)
    assert error.value.code == "bad_mute_duration"
    assert Membership.objects.get(user=member).muted_until is None
    assert QueueItem.objects.get(pk=item.pk).status == "claimed"


def test_a_mute_pauses_posting_and_ends_by_itself(group, member, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    services.mute_member(item, actor=moderator, reason=REASON, duration=timedelta(hours=1))
    membership = Membership.objects.get(user=member)
    assert membership.is_muted()
    assert not membership.is_muted(timezone.now() + timedelta(hours=2))
    with pytest.raises(DomainError) as error:
        post(group, member)
    assert error.value.code == "muted"


def test_removing_a_member_ends_their_membership(group, member, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    services.remove_member(item, actor=moderator, reason=REASON)
    assert Membership.objects.get(user=member).status == "removed"


def test_a_ban_deactivates_the_account_and_only_site_moderators_may_ban(
    group, member, facilitator, moderator
):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=facilitator)
    with pytest.raises(DomainError):
        services.ban_member(item, actor=facilitator, reason=REASON)
    services.release_item(item, moderator=facilitator)
    item = services.claim_item(item, moderator=moderator)

    services.ban_member(item, actor=moderator, reason=REASON)

    member.refresh_from_db()
    assert not member.is_active
    from django.test import Client

    from tests.factories import PASSWORD

    assert not Client().login(email=member.email, password=PASSWORD)


def test_a_facilitator_acts_on_their_own_groups_items(group, member, facilitator):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=facilitator)
    services.hide_message(item, actor=facilitator, reason=REASON)
    message.refresh_from_db()
    assert message.hidden_at is not None


def test_an_appeal_enters_the_queue_and_a_facilitator_can_welcome_them_back(
    group, member, facilitator, moderator
):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    removal = services.remove_member(item, actor=moderator, reason=REASON)

    appeal = services.submit_appeal(
        removal,
        member=member,
        kind="repair",
        text="I was having a hard night. Next time I'd step away first.",
    )

    appeal_item = QueueItem.objects.get(appeal=appeal)
    assert (appeal_item.kind, appeal_item.group_id, appeal_item.member_id) == (
        "appeal",
        group.pk,
        member.pk,
    )
    services.claim_item(appeal_item, moderator=facilitator)
    services.reinstate_member(appeal_item, actor=facilitator, reason="Welcome back, Willow.")
    assert Membership.objects.get(user=member).status == "active"
    assert Notification.objects.filter(user=member, body="Welcome back, Willow.").exists()


def test_only_the_member_an_action_was_about_can_appeal_it(group, member, facilitator, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    warning = services.warn_member(item, actor=moderator, reason=REASON)
    with pytest.raises(DomainError):
        services.submit_appeal(warning, member=facilitator, text="Not mine to appeal.")
    assert not QueueItem.objects.filter(kind="appeal").exists()


def test_a_hidden_message_can_be_restored_from_an_appeal(group, member, moderator):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)
    hide = services.hide_message(item, actor=moderator, reason=REASON)
    appeal = services.submit_appeal(hide, member=member, text="It was a quote from a film.")
    appeal_item = services.claim_item(QueueItem.objects.get(appeal=appeal), moderator=moderator)

    services.restore_message(appeal_item, actor=moderator, reason="Thanks for explaining.")

    message.refresh_from_db()
    assert message.hidden_at is None
