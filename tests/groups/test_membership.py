"""Groups and who belongs, at the service level: creating and editing groups, permissions,
archiving, the three join policies, invitations, agreement versions, the waitlist and its seat
offers, leaving and rejoining, listen-only presence, and the domain events they send.

Every refusal is checked twice: the DomainError's code, and that the database did not change.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from community.errors import DomainError, PermissionDenied
from groups import selectors, services, signals
from groups.models import (
    AgreementVersion,
    Group,
    Invite,
    JoinRequest,
    Membership,
    WaitlistEntry,
)
from groups.tasks import task_expire_seat_offers
from tests.factories import fill_group, make_group, make_invite, make_member, make_membership

pytestmark = pytest.mark.django_db

AGREEMENT = "We listen without fixing. What is shared here stays here."


def db_state():
    """Every row the membership services can write, to show a refusal changed nothing."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Group, AgreementVersion, Membership, JoinRequest, Invite, WaitlistEntry)
    }


def assert_refused(code, call, *args, **kwargs):
    """``call`` raises a DomainError with ``code`` and leaves the database as it was."""
    before = db_state()
    with pytest.raises(DomainError) as excinfo:
        call(*args, **kwargs)
    assert excinfo.value.code == code
    assert excinfo.value.message
    assert db_state() == before
    return excinfo.value


def status_of(group, user):
    return Membership.objects.get(group=group, user=user).status


def new_group_options(**options):
    options.setdefault("name", "Morning circle")
    options.setdefault("slug", "morning-circle")
    options.setdefault("topic", "connection")
    options.setdefault("description", "Coffee and a gentle check-in.")
    options.setdefault("agreement", AGREEMENT)
    return options


@pytest.fixture
def other_group(db):
    """Morning circle, facilitated by Alder: to show facilitators stay in their own group."""
    other = make_group(name="Morning circle", slug="morning-circle", join_policy="approval")
    alder = make_member(display_name="Alder")
    make_membership(other, alder, role="facilitator")
    return other


@pytest.fixture
def approval_group(facilitator):
    """A request-to-join group of 4 that Maple facilitates."""
    circle = make_group(
        name="Quiet circle", slug="quiet-circle", join_policy="approval", capacity=4
    )
    make_membership(circle, facilitator, role="facilitator")
    return circle


@pytest.fixture
def invite_group(facilitator):
    """An invitation-only group of 4 that Maple facilitates."""
    circle = make_group(
        name="Invited circle", slug="invited-circle", join_policy="invite", capacity=4
    )
    make_membership(circle, facilitator, role="facilitator")
    return circle


@pytest.fixture
def pair(facilitator):
    """An open group of two, full: Maple and Rowan. Ash and then Birch wait for a seat."""
    small = make_group(name="Pair", slug="pair", capacity=2)
    make_membership(small, facilitator, role="facilitator")
    rowan = make_member(display_name="Rowan")
    make_membership(small, rowan)
    return small


def listen(signal):
    """Collect the keyword arguments of every send of ``signal``."""
    received = []

    def listener(sender, **kwargs):
        kwargs.pop("signal", None)
        received.append(kwargs)

    signal.connect(listener, weak=False)
    return received, lambda: signal.disconnect(listener)


@pytest.fixture
def seat_offers():
    received, disconnect = listen(signals.seat_offered)
    yield received
    disconnect()


@pytest.fixture
def decisions():
    received, disconnect = listen(signals.join_request_decided)
    yield received
    disconnect()


@pytest.fixture
def agreement_changes():
    received, disconnect = listen(signals.agreement_changed)
    yield received
    disconnect()


# --- Creating groups ------------------------------------------------------------------------


def test_a_facilitator_starts_a_group_and_becomes_its_facilitator(facilitator):
    new = services.create_group(actor=facilitator, **new_group_options())

    assert new.capacity == 12
    assert new.join_policy == "open"
    assert new.agreement_version == 1
    assert new.created_by == facilitator
    (version,) = new.agreement_versions.all()
    assert (version.version, version.text) == (1, AGREEMENT)
    seat = Membership.objects.get(group=new, user=facilitator)
    assert seat.role == "facilitator"
    assert seat.status == "active"
    assert seat.agreement_version == 1
    assert seat.agreement_accepted_at is not None


def test_a_site_moderator_can_start_a_group_for_a_facilitator_they_name(moderator, outsider):
    new = services.create_group(
        actor=moderator, facilitator=outsider, capacity=8, **new_group_options()
    )

    assert new.capacity == 8
    assert new.created_by == moderator
    assert list(new.memberships.values_list("user", "role")) == [(outsider.pk, "facilitator")]
    assert selectors.can_manage_group(outsider, new)


@pytest.mark.parametrize("who", ["member", "outsider"])
def test_members_and_outsiders_cannot_start_groups(request, group, who):
    actor = request.getfixturevalue(who)
    assert not selectors.may_create_groups(actor)
    assert_refused("not_facilitator", services.create_group, actor=actor, **new_group_options())


def test_a_facilitator_cannot_make_someone_else_the_facilitator_of_a_new_group(
    facilitator, outsider
):
    assert_refused(
        "not_facilitator",
        services.create_group,
        actor=facilitator,
        facilitator=outsider,
        **new_group_options(),
    )


@pytest.mark.parametrize("capacity", [0, 1, 21, 40])
def test_a_group_holds_between_2_and_20_people(facilitator, capacity):
    assert_refused(
        "bad_capacity",
        services.create_group,
        actor=facilitator,
        capacity=capacity,
        **new_group_options(),
    )


@pytest.mark.parametrize("capacity", [2, 20])
def test_the_smallest_and_largest_sizes_are_allowed(facilitator, capacity):
    new = services.create_group(actor=facilitator, capacity=capacity, **new_group_options())
    assert new.capacity == capacity


def test_a_group_address_already_in_use_is_refused(group, facilitator):
    assert_refused(
        "slug_taken", services.create_group, actor=facilitator, **new_group_options(slug=group.slug)
    )


# --- Editing and permissions ----------------------------------------------------------------


def test_a_facilitator_edits_their_groups_details(group, facilitator):
    services.update_group(
        group,
        actor=facilitator,
        name="Evening circle (Tuesdays)",
        description="A gentle evening check-in.",
        join_policy="approval",
        is_listed=False,
    )

    group.refresh_from_db()
    assert group.name == "Evening circle (Tuesdays)"
    assert group.description == "A gentle evening check-in."
    assert group.join_policy == "approval"
    assert group.is_listed is False
    assert group.agreement_version == 1


def test_a_site_moderator_can_edit_any_group(group, moderator):
    services.update_group(group, actor=moderator, topic="grief")
    group.refresh_from_db()
    assert group.topic == "grief"


def test_a_member_cannot_edit_the_group(group, member):
    assert not selectors.can_manage_group(member, group)
    assert_refused("not_facilitator", services.update_group, group, actor=member, name="Mine")


def test_a_facilitator_of_another_group_cannot_edit_this_one(group, other_group, facilitator):
    assert not selectors.can_manage_group(facilitator, other_group)
    assert_refused(
        "not_facilitator", services.update_group, other_group, actor=facilitator, name="Mine"
    )


def test_a_facilitator_who_left_no_longer_manages_the_group(group, facilitator):
    services.leave_group(group, user=facilitator)
    assert not selectors.can_manage_group(facilitator, group)
    assert_refused("not_facilitator", services.update_group, group, actor=facilitator, name="X")


def test_the_size_limit_cannot_drop_below_the_current_members(group, facilitator, member):
    make_membership(group, make_member())  # three members now

    assert_refused(
        "capacity_below_members", services.update_group, group, actor=facilitator, capacity=2
    )

    services.update_group(group, actor=facilitator, capacity=3)
    group.refresh_from_db()
    assert group.capacity == 3


@pytest.mark.parametrize("capacity", [1, 21])
def test_an_edit_keeps_the_size_limit_within_2_and_20(group, facilitator, capacity):
    assert_refused(
        "bad_capacity", services.update_group, group, actor=facilitator, capacity=capacity
    )


def test_editing_a_field_that_is_not_editable_is_a_programming_error(group, facilitator):
    with pytest.raises(ValueError, match="slug"):
        services.update_group(group, actor=facilitator, slug="elsewhere")


# --- Archiving ------------------------------------------------------------------------------


def test_an_archived_group_takes_no_new_members(group, facilitator, outsider):
    services.archive_group(group, actor=facilitator)
    group.refresh_from_db()
    assert group.is_archived

    assert_refused("archived", services.join_group, group, user=outsider, agreement_version=1)


def test_an_archived_group_cannot_be_edited(group, facilitator):
    services.archive_group(group, actor=facilitator)
    assert_refused("archived", services.update_group, group, actor=facilitator, name="New name")
    assert_refused("archived", services.create_invite, group, actor=facilitator)


def test_a_request_to_an_archived_group_cannot_be_approved(approval_group, facilitator, outsider):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request
    services.archive_group(approval_group, actor=facilitator)

    assert_refused(
        "archived", services.decide_join_request, request, actor=facilitator, approve=True
    )


def test_bringing_back_an_archived_group_lets_people_join_again(group, facilitator, outsider):
    services.archive_group(group, actor=facilitator)
    services.archive_group(group, actor=facilitator, archived=False)

    outcome = services.join_group(group, user=outsider, agreement_version=1)
    assert outcome.result == "joined"


def test_an_archived_group_offers_no_seats_until_it_comes_back(pair, facilitator, moderator):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)
    services.archive_group(pair, actor=moderator)

    services.leave_group(pair, user=facilitator)
    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "waiting"

    services.archive_group(pair, actor=moderator, archived=False)
    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "offered"


def test_a_member_cannot_archive_the_group(group, member):
    assert_refused("not_facilitator", services.archive_group, group, actor=member)


def test_a_facilitator_of_another_group_cannot_archive_this_one(other_group, facilitator):
    assert_refused("not_facilitator", services.archive_group, other_group, actor=facilitator)


# --- Joining an open group ------------------------------------------------------------------


def test_joining_an_open_group_seats_the_person_at_once_with_the_agreement_they_accepted(
    group, outsider
):
    before = timezone.now()
    outcome = services.join_group(group, user=outsider, agreement_version=1)

    assert outcome.result == "joined"
    seat = Membership.objects.get(group=group, user=outsider)
    assert outcome.membership == seat
    assert seat.status == "active"
    assert seat.role == "member"
    assert seat.agreement_version == 1
    assert seat.agreement_accepted_at >= before
    assert seat.agreement_is_current()


def test_joining_a_group_you_are_in_is_refused(group, member):
    assert_refused("already_member", services.join_group, group, user=member, agreement_version=1)


def test_joining_with_an_agreement_that_changed_meanwhile_is_refused(group, facilitator, outsider):
    services.update_group(group, actor=facilitator, agreement=AGREEMENT + " We start on time.")

    assert_refused(
        "agreement_changed", services.join_group, group, user=outsider, agreement_version=1
    )

    outcome = services.join_group(group, user=outsider, agreement_version=2)
    assert outcome.membership.agreement_version == 2


# --- Asking to join -------------------------------------------------------------------------


def test_asking_to_join_an_approval_group_creates_one_pending_request(approval_group, outsider):
    first = services.join_group(
        approval_group, user=outsider, agreement_version=1, message="I'd like to listen first."
    )
    again = services.join_group(approval_group, user=outsider, agreement_version=1)

    assert first.result == again.result == "requested"
    assert again.request == first.request
    (request,) = JoinRequest.objects.filter(group=approval_group)
    assert request.status == "pending"
    assert request.agreement_version == 1
    assert request.message == "I'd like to listen first."
    assert not Membership.objects.filter(group=approval_group, user=outsider).exists()
    assert list(selectors.pending_requests(approval_group)) == [request]


def test_asking_with_a_stale_agreement_is_refused(approval_group, facilitator, outsider):
    services.update_group(approval_group, actor=facilitator, agreement="Be kind. Be on time.")
    assert_refused(
        "agreement_changed", services.join_group, approval_group, user=outsider, agreement_version=1
    )


def test_a_facilitator_approves_a_request_with_a_kind_note(approval_group, facilitator, outsider):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request

    outcome = services.decide_join_request(
        request, actor=facilitator, approve=True, note="Welcome, we're glad you're here."
    )

    assert outcome.result == "joined"
    request.refresh_from_db()
    assert request.status == "approved"
    assert request.decided_by == facilitator
    assert request.decided_at is not None
    assert request.note == "Welcome, we're glad you're here."
    seat = Membership.objects.get(group=approval_group, user=outsider)
    assert (seat.status, seat.role, seat.agreement_version) == ("active", "member", 1)


def test_a_facilitator_declines_a_request_with_a_kind_note(approval_group, facilitator, outsider):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request

    outcome = services.decide_join_request(
        request, actor=facilitator, approve=False, note="This circle is full of regulars for now."
    )

    assert outcome is None
    request.refresh_from_db()
    assert request.status == "declined"
    assert request.note == "This circle is full of regulars for now."
    assert not Membership.objects.filter(group=approval_group, user=outsider).exists()


@pytest.mark.parametrize("first_answer", [True, False])
def test_an_answered_request_cannot_be_answered_again(
    approval_group, facilitator, outsider, first_answer
):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request
    services.decide_join_request(request, actor=facilitator, approve=first_answer)

    for answer in (True, False):
        assert_refused(
            "already_decided",
            services.decide_join_request,
            request,
            actor=facilitator,
            approve=answer,
        )


def test_a_member_cannot_approve_requests(approval_group, outsider):
    linden = make_member(display_name="Linden")
    make_membership(approval_group, linden)
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request

    assert_refused(
        "not_facilitator", services.decide_join_request, request, actor=linden, approve=True
    )


def test_a_facilitator_of_another_group_cannot_decide_its_requests(
    other_group, facilitator, outsider
):
    request = services.join_group(other_group, user=outsider, agreement_version=1).request

    for approve in (True, False):
        assert_refused(
            "not_facilitator",
            services.decide_join_request,
            request,
            actor=facilitator,
            approve=approve,
        )


def test_a_site_moderator_can_decide_any_groups_requests(other_group, moderator, outsider):
    request = services.join_group(other_group, user=outsider, agreement_version=1).request
    outcome = services.decide_join_request(request, actor=moderator, approve=True)
    assert outcome.result == "joined"


def test_approving_a_request_when_the_group_is_full_puts_the_person_on_the_waitlist(
    approval_group, facilitator, outsider
):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request
    fill_group(approval_group)

    outcome = services.decide_join_request(request, actor=facilitator, approve=True)

    assert outcome.result == "waitlisted"
    assert outcome.waitlist_entry.user == outsider
    assert outcome.waitlist_entry.status == "waiting"
    request.refresh_from_db()
    assert request.status == "approved"
    assert not Membership.objects.filter(group=approval_group, user=outsider).exists()


def test_withdrawing_a_request_closes_it(approval_group, outsider):
    services.join_group(approval_group, user=outsider, agreement_version=1)

    services.withdraw_join_request(approval_group, user=outsider)

    assert JoinRequest.objects.get(group=approval_group, user=outsider).status == "withdrawn"
    assert not selectors.pending_requests(approval_group).exists()
    assert_refused("no_request", services.withdraw_join_request, approval_group, user=outsider)


def test_a_withdrawn_request_can_be_made_again(approval_group, outsider):
    services.join_group(approval_group, user=outsider, agreement_version=1)
    services.withdraw_join_request(approval_group, user=outsider)

    outcome = services.join_group(approval_group, user=outsider, agreement_version=1)

    assert outcome.result == "requested"
    assert outcome.request.status == "pending"


# --- Invitations ----------------------------------------------------------------------------


def test_an_invite_only_group_refuses_joining_without_an_invitation(invite_group, outsider):
    assert_refused(
        "invite_only", services.join_group, invite_group, user=outsider, agreement_version=1
    )


def test_a_facilitator_creates_an_invitation_that_expires_after_the_chosen_days(
    invite_group, facilitator
):
    before = timezone.now()
    invite = services.create_invite(invite_group, actor=facilitator, days=3)

    assert invite.group == invite_group
    assert invite.created_by == facilitator
    assert invite.uses == 0
    assert before + timedelta(days=3) <= invite.expires_at <= timezone.now() + timedelta(days=3)
    assert invite.is_usable()


@pytest.mark.parametrize("days", [0, 31, -1])
def test_an_invitation_lasts_from_1_to_30_days(invite_group, facilitator, days):
    assert_refused(
        "bad_invite_days", services.create_invite, invite_group, actor=facilitator, days=days
    )


def test_a_valid_invitation_seats_the_person_and_counts_the_use(
    invite_group, facilitator, outsider
):
    invite = services.create_invite(invite_group, actor=facilitator)

    outcome = services.join_group(invite_group, user=outsider, agreement_version=1, invite=invite)

    assert outcome.result == "joined"
    assert status_of(invite_group, outsider) == "active"
    invite.refresh_from_db()
    assert invite.uses == 1

    services.join_group(invite_group, user=make_member(), agreement_version=1, invite=invite)
    invite.refresh_from_db()
    assert invite.uses == 2


def test_an_invitation_to_an_approval_group_skips_the_request(
    approval_group, facilitator, outsider
):
    invite = services.create_invite(approval_group, actor=facilitator)

    outcome = services.join_group(approval_group, user=outsider, agreement_version=1, invite=invite)

    assert outcome.result == "joined"
    assert not JoinRequest.objects.filter(group=approval_group).exists()


def test_an_expired_invitation_is_refused(invite_group, outsider):
    invite = make_invite(invite_group, expired=True)
    assert not invite.is_usable()
    assert_refused(
        "invite_unusable",
        services.join_group,
        invite_group,
        user=outsider,
        agreement_version=1,
        invite=invite,
    )


def test_a_revoked_invitation_is_refused(invite_group, facilitator, outsider):
    invite = services.create_invite(invite_group, actor=facilitator)
    services.revoke_invite(invite, actor=facilitator)
    invite.refresh_from_db()
    assert invite.revoked_at is not None

    assert_refused(
        "invite_unusable",
        services.join_group,
        invite_group,
        user=outsider,
        agreement_version=1,
        invite=invite,
    )


def test_an_invitation_revoked_after_it_was_looked_up_is_still_refused(
    invite_group, facilitator, outsider
):
    invite = services.create_invite(invite_group, actor=facilitator)
    looked_up = selectors.invite_for_token(invite.token)
    services.revoke_invite(invite, actor=facilitator)

    assert_refused(
        "invite_unusable",
        services.join_group,
        invite_group,
        user=outsider,
        agreement_version=1,
        invite=looked_up,
    )


def test_an_invitation_to_one_group_cannot_be_used_for_another(
    invite_group, approval_group, facilitator, outsider
):
    invite = services.create_invite(approval_group, actor=facilitator)

    assert_refused(
        "invite_wrong_group",
        services.join_group,
        invite_group,
        user=outsider,
        agreement_version=1,
        invite=invite,
    )


def test_revoking_twice_keeps_the_first_revocation_time(invite_group, facilitator):
    invite = services.create_invite(invite_group, actor=facilitator)
    first = services.revoke_invite(invite, actor=facilitator).revoked_at

    assert services.revoke_invite(invite, actor=facilitator).revoked_at == first


def test_a_member_cannot_create_or_revoke_invitations(invite_group, facilitator):
    linden = make_member(display_name="Linden")
    make_membership(invite_group, linden)
    invite = services.create_invite(invite_group, actor=facilitator)

    assert_refused("not_facilitator", services.create_invite, invite_group, actor=linden)
    assert_refused("not_facilitator", services.revoke_invite, invite, actor=linden)


def test_a_facilitator_of_another_group_cannot_create_or_revoke_its_invitations(
    other_group, facilitator
):
    invite = make_invite(other_group)

    assert_refused("not_facilitator", services.create_invite, other_group, actor=facilitator)
    assert_refused("not_facilitator", services.revoke_invite, invite, actor=facilitator)


def test_an_invitation_to_a_full_group_waitlists_without_counting_a_use(
    invite_group, facilitator, outsider
):
    fill_group(invite_group)
    invite = services.create_invite(invite_group, actor=facilitator)

    outcome = services.join_group(invite_group, user=outsider, agreement_version=1, invite=invite)

    assert outcome.result == "waitlisted"
    invite.refresh_from_db()
    assert invite.uses == 0


# --- Agreement versions ---------------------------------------------------------------------


def test_changing_the_agreement_records_a_new_version(group, facilitator):
    services.update_group(group, actor=facilitator, agreement="Be gentle. Pass is always okay.")

    group.refresh_from_db()
    assert group.agreement_version == 2
    assert list(group.agreement_versions.values_list("version", "text")) == [
        (2, "Be gentle. Pass is always okay."),
        (1, AGREEMENT),
    ]
    assert group.agreement_versions.get(version=2).created_by == facilitator


def test_an_edit_that_keeps_the_agreement_text_keeps_its_version(group, facilitator):
    services.update_group(group, actor=facilitator, agreement=AGREEMENT, name="Evening")
    group.refresh_from_db()
    assert group.agreement_version == 1
    assert group.agreement_versions.count() == 1


def test_members_accept_a_changed_agreement_before_it_is_current_for_them(
    group, facilitator, member
):
    services.update_group(group, actor=facilitator, agreement="Be gentle. Pass is always okay.")

    seat = Membership.objects.select_related("group").get(group=group, user=member)
    assert not seat.agreement_is_current()
    assert selectors.group_page_state(group, member).needs_agreement

    assert_refused("agreement_changed", services.accept_agreement, group, user=member, version=1)

    services.accept_agreement(group, user=member, version=2)
    seat = Membership.objects.select_related("group").get(group=group, user=member)
    assert seat.agreement_version == 2
    assert seat.agreement_is_current()
    assert not selectors.group_page_state(group, member).needs_agreement


def test_only_members_accept_a_groups_agreement(group, outsider):
    assert_refused("not_member", services.accept_agreement, group, user=outsider, version=1)


def test_an_agreement_change_is_announced_after_commit(
    group, facilitator, agreement_changes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.update_group(group, actor=facilitator, agreement="Be gentle.")
    assert agreement_changes == []

    for callback in callbacks:
        callback()
    assert agreement_changes == [{"group_id": group.pk, "version": 2}]


# --- Waitlist and seat offers ---------------------------------------------------------------


def test_a_full_open_group_puts_the_next_person_on_the_waitlist(pair, outsider):
    outcome = services.join_group(pair, user=outsider, agreement_version=1)

    assert outcome.result == "waitlisted"
    assert outcome.waitlist_entry.status == "waiting"
    assert not Membership.objects.filter(group=pair, user=outsider).exists()

    again = services.join_group(pair, user=outsider, agreement_version=1)
    assert again.waitlist_entry == outcome.waitlist_entry
    assert WaitlistEntry.objects.filter(group=pair, user=outsider).count() == 1


def test_when_a_seat_frees_the_first_person_waiting_is_offered_it_for_48_hours(
    pair, facilitator, seat_offers, django_capture_on_commit_callbacks
):
    ash, birch = make_member(display_name="Ash"), make_member(display_name="Birch")
    services.join_group(pair, user=ash, agreement_version=1)
    services.join_group(pair, user=birch, agreement_version=1)

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.leave_group(pair, user=facilitator)

    offer = WaitlistEntry.objects.get(group=pair, user=ash)
    assert offer.status == "offered"
    assert offer.offered_at >= before
    assert offer.offer_expires_at == offer.offered_at + timedelta(hours=48)
    assert WaitlistEntry.objects.get(group=pair, user=birch).status == "waiting"
    assert seat_offers == [
        {
            "entry_id": offer.pk,
            "group_id": pair.pk,
            "user_id": ash.pk,
            "expires_at": offer.offer_expires_at,
        }
    ]
    # The held seat counts as taken: one member plus one offer in a group of two.
    assert selectors.seats_taken(pair) == 2


def test_a_held_seat_is_not_taken_by_someone_else(pair, facilitator, outsider):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)
    services.leave_group(pair, user=facilitator)

    outcome = services.join_group(pair, user=outsider, agreement_version=1)

    assert outcome.result == "waitlisted"
    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "offered"


def test_the_offered_person_takes_the_held_seat(pair, facilitator):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)
    services.leave_group(pair, user=facilitator)

    outcome = services.join_group(pair, user=ash, agreement_version=1)

    assert outcome.result == "joined"
    assert status_of(pair, ash) == "active"
    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "joined"
    assert selectors.seats_taken(pair) == 2


@pytest.mark.parametrize("policy", ["approval", "invite"])
def test_the_offered_person_joins_directly_whatever_the_join_policy(
    pair, facilitator, moderator, policy
):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)
    services.update_group(pair, actor=moderator, join_policy=policy)
    services.leave_group(pair, user=facilitator)

    outcome = services.join_group(pair, user=ash, agreement_version=1)

    assert outcome.result == "joined"
    assert not JoinRequest.objects.filter(group=pair).exists()


def test_raising_the_size_limit_offers_the_new_seats_in_waiting_order(pair, facilitator):
    ash, birch, cypress = (make_member(display_name=n) for n in ("Ash", "Birch", "Cypress"))
    for person in (ash, birch, cypress):
        services.join_group(pair, user=person, agreement_version=1)

    services.update_group(pair, actor=facilitator, capacity=4)

    statuses = dict(WaitlistEntry.objects.filter(group=pair).values_list("user", "status"))
    assert statuses == {ash.pk: "offered", birch.pk: "offered", cypress.pk: "waiting"}
    assert selectors.seats_taken(pair) == 4


def test_an_offer_still_within_48_hours_does_not_lapse(pair, facilitator):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)
    services.leave_group(pair, user=facilitator)
    offer = WaitlistEntry.objects.get(group=pair, user=ash)

    assert services.expire_seat_offers(now=offer.offered_at + timedelta(hours=47)) == 0
    assert WaitlistEntry.objects.get(pk=offer.pk).status == "offered"


def test_an_expired_offer_lapses_and_passes_to_the_next_person(pair, facilitator, seat_offers):
    ash, birch = make_member(display_name="Ash"), make_member(display_name="Birch")
    services.join_group(pair, user=ash, agreement_version=1)
    services.join_group(pair, user=birch, agreement_version=1)
    services.leave_group(pair, user=facilitator)
    later = WaitlistEntry.objects.get(group=pair, user=ash).offer_expires_at + timedelta(minutes=1)

    assert services.expire_seat_offers(now=later) == 1

    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "expired"
    passed_on = WaitlistEntry.objects.get(group=pair, user=birch)
    assert passed_on.status == "offered"
    assert passed_on.offered_at == later
    assert passed_on.offer_expires_at == later + timedelta(hours=48)
    assert services.expire_seat_offers(now=later) == 0


def test_the_seat_offer_task_is_safe_to_run_twice(pair, facilitator):
    ash, birch = make_member(display_name="Ash"), make_member(display_name="Birch")
    services.join_group(pair, user=ash, agreement_version=1)
    services.join_group(pair, user=birch, agreement_version=1)
    services.leave_group(pair, user=facilitator)
    WaitlistEntry.objects.filter(group=pair, user=ash).update(
        offer_expires_at=timezone.now() - timedelta(minutes=1)
    )

    assert task_expire_seat_offers() == 1
    offer = WaitlistEntry.objects.get(group=pair, user=birch)
    assert task_expire_seat_offers() == 0

    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "expired"
    assert WaitlistEntry.objects.get(pk=offer.pk).offer_expires_at == offer.offer_expires_at
    assert WaitlistEntry.objects.filter(group=pair, status="offered").count() == 1


def test_a_person_whose_offer_lapsed_can_join_the_waitlist_again(pair, facilitator):
    ash, birch = make_member(display_name="Ash"), make_member(display_name="Birch")
    services.join_group(pair, user=ash, agreement_version=1)
    services.join_group(pair, user=birch, agreement_version=1)
    services.leave_group(pair, user=facilitator)
    offer = WaitlistEntry.objects.get(group=pair, user=ash)
    services.expire_seat_offers(now=offer.offer_expires_at + timedelta(minutes=1))

    outcome = services.join_group(pair, user=ash, agreement_version=1)

    assert outcome.result == "waitlisted"
    assert outcome.waitlist_entry.pk != offer.pk
    assert outcome.waitlist_entry.status == "waiting"


def test_leaving_the_waitlist(pair, outsider):
    services.join_group(pair, user=outsider, agreement_version=1)

    services.leave_waitlist(pair, user=outsider)

    assert WaitlistEntry.objects.get(group=pair, user=outsider).status == "withdrawn"
    assert_refused("not_waiting", services.leave_waitlist, pair, user=outsider)


def test_turning_down_a_seat_offer_passes_it_to_the_next_person(pair, facilitator):
    ash, birch = make_member(display_name="Ash"), make_member(display_name="Birch")
    services.join_group(pair, user=ash, agreement_version=1)
    services.join_group(pair, user=birch, agreement_version=1)
    services.leave_group(pair, user=facilitator)

    services.leave_waitlist(pair, user=ash)

    assert WaitlistEntry.objects.get(group=pair, user=ash).status == "withdrawn"
    assert WaitlistEntry.objects.get(group=pair, user=birch).status == "offered"


# --- Leaving and coming back ----------------------------------------------------------------


def test_leaving_is_immediate_and_undone_by_rejoining_an_open_group(group, member):
    services.leave_group(group, user=member)

    seat = Membership.objects.get(group=group, user=member)
    assert seat.status == "left"
    assert seat.left_at is not None
    assert selectors.active_membership(group, member) is None

    outcome = services.join_group(group, user=member, agreement_version=1)

    assert outcome.result == "joined"
    seat.refresh_from_db()
    assert (seat.status, seat.left_at) == ("active", None)
    assert Membership.objects.filter(group=group, user=member).count() == 1


def test_rejoining_an_approval_group_after_leaving_asks_again(approval_group, outsider):
    make_membership(approval_group, outsider)
    services.leave_group(approval_group, user=outsider)

    outcome = services.join_group(approval_group, user=outsider, agreement_version=1)

    assert outcome.result == "requested"
    assert status_of(approval_group, outsider) == "left"


def test_rejoining_an_invite_only_group_after_leaving_needs_an_invitation(
    invite_group, facilitator, outsider
):
    make_membership(invite_group, outsider)
    services.leave_group(invite_group, user=outsider)

    assert_refused(
        "invite_only", services.join_group, invite_group, user=outsider, agreement_version=1
    )

    invite = services.create_invite(invite_group, actor=facilitator)
    outcome = services.join_group(invite_group, user=outsider, agreement_version=1, invite=invite)
    assert outcome.result == "joined"


def test_rejoining_after_leaving_accepts_todays_agreement(group, facilitator, member):
    services.leave_group(group, user=member)
    services.update_group(group, actor=facilitator, agreement="Be gentle.")

    assert_refused(
        "agreement_changed", services.join_group, group, user=member, agreement_version=1
    )

    outcome = services.join_group(group, user=member, agreement_version=2)
    assert outcome.membership.agreement_version == 2


def test_leaving_a_group_you_are_not_in_is_refused(group, outsider):
    assert_refused("not_member", services.leave_group, group, user=outsider)


@pytest.mark.parametrize("status", ["removed", "banned"])
def test_removed_and_banned_people_cannot_rejoin_by_themselves(group, facilitator, member, status):
    # Moderation services set these; here the row is set directly.
    Membership.objects.filter(group=group, user=member).update(status=status)
    invite = services.create_invite(group, actor=facilitator)

    error = assert_refused(
        "not_allowed_back", services.join_group, group, user=member, agreement_version=1
    )
    assert isinstance(error, PermissionDenied)
    assert_refused(
        "not_allowed_back",
        services.join_group,
        group,
        user=member,
        agreement_version=1,
        invite=invite,
    )
    assert status_of(group, member) == status


@pytest.mark.parametrize("status", ["removed", "banned"])
def test_a_request_from_someone_removed_meanwhile_cannot_be_approved(
    approval_group, facilitator, outsider, status
):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request
    make_membership(approval_group, outsider, status=status)

    assert_refused(
        "not_allowed_back", services.decide_join_request, request, actor=facilitator, approve=True
    )


# --- Listening ------------------------------------------------------------------------------


def test_a_member_switches_to_listening_and_back(group, member):
    assert services.set_listening(group, user=member, listening=True).listening is True
    assert Membership.objects.get(group=group, user=member).listening is True

    assert services.set_listening(group, user=member, listening=False).listening is False
    assert Membership.objects.get(group=group, user=member).listening is False


def test_only_active_members_can_set_listening(group, member, outsider):
    assert_refused("not_member", services.set_listening, group, user=outsider, listening=True)

    services.leave_group(group, user=member)
    assert_refused("not_member", services.set_listening, group, user=member, listening=True)


# --- Domain events --------------------------------------------------------------------------


def test_a_decided_request_is_announced_after_commit(
    approval_group, facilitator, outsider, decisions, django_capture_on_commit_callbacks
):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.decide_join_request(request, actor=facilitator, approve=False, note="Not now.")
    assert decisions == []

    for callback in callbacks:
        callback()
    assert decisions == [
        {
            "request_id": request.pk,
            "group_id": approval_group.pk,
            "user_id": outsider.pk,
            "approved": False,
            "note": "Not now.",
        }
    ]


def test_a_seat_offer_is_announced_only_after_commit(
    pair, facilitator, seat_offers, django_capture_on_commit_callbacks
):
    ash = make_member(display_name="Ash")
    services.join_group(pair, user=ash, agreement_version=1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.leave_group(pair, user=facilitator)
    assert seat_offers == []

    for callback in callbacks:
        callback()
    assert [offer["user_id"] for offer in seat_offers] == [ash.pk]


def test_a_refused_decision_announces_nothing(
    approval_group, member, outsider, decisions, django_capture_on_commit_callbacks
):
    request = services.join_group(approval_group, user=outsider, agreement_version=1).request
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(PermissionDenied),
    ):
        services.decide_join_request(request, actor=member, approve=True)
    assert callbacks == []
    assert decisions == []


def test_joining_by_invitation_settles_an_open_request_so_facilitators_arent_left_asking(
    facilitator, outsider
):
    harbour = make_group(name="Harbour", slug="harbour", join_policy="approval")
    make_membership(harbour, facilitator, role="facilitator")
    requested = services.join_group(harbour, user=outsider, agreement_version=1)
    invite = services.create_invite(harbour, actor=facilitator)

    services.join_group(harbour, user=outsider, agreement_version=1, invite=invite)

    requested.request.refresh_from_db()
    assert requested.request.status == "approved"
    assert not JoinRequest.objects.filter(group=harbour, status="pending").exists()


def test_asking_to_join_while_already_waiting_in_line_keeps_the_one_place(facilitator, outsider):
    pair = make_group(name="Pair", slug="pair", join_policy="approval", capacity=2)
    make_membership(pair, facilitator, role="facilitator")
    make_membership(pair, make_member())
    first = services.join_group(pair, user=outsider, agreement_version=1)
    services.decide_join_request(first.request, actor=facilitator, approve=True)
    assert WaitlistEntry.objects.filter(group=pair, user=outsider, status="waiting").exists()

    again = services.join_group(pair, user=outsider, agreement_version=1)

    assert again.result == "waitlisted"
    assert not JoinRequest.objects.filter(group=pair, user=outsider, status="pending").exists()


def test_a_group_with_an_unknown_topic_or_policy_is_refused(moderator):
    with pytest.raises(DomainError) as refused:
        services.create_group(
            actor=moderator,
            name="Odd",
            slug="odd",
            topic="astrology",
            description="",
            agreement="Kind.",
        )
    assert refused.value.code == "bad_choice"
    assert not Group.objects.filter(slug="odd").exists()
