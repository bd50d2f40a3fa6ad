"""The group pages: directory, group page, joining, agreements, requests, invites, archiving.

Service rules are tested in test_membership.py; here the pages show them kindly, refuse bad
input without changing anything, and keep to who may do what.
"""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from groups import services
from groups.models import Group, Invite, JoinRequest, Membership, WaitlistEntry
from tests.factories import make_group, make_meeting, make_member, make_membership

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page as a reader sees it (entities such as &#x27; turned back into characters)."""
    return html.unescape(response.content.decode())


@pytest.fixture
def other_group(db):
    """Another group with its own facilitator, Alder, to show facilitators stay in their lane."""
    group = make_group(name="Morning circle", slug="morning-circle", join_policy="approval")
    alder = make_member(display_name="Alder")
    make_membership(group, alder, role="facilitator")
    return group


def test_the_directory_lists_groups_with_topic_size_next_meeting_and_policy(
    client, group, facilitator, member
):
    make_meeting(group, actor=facilitator, title="Tuesday circle")
    make_group(name="Hidden circle", slug="hidden-circle", is_listed=False)
    make_group(name="Old circle", slug="old-circle", archived_at=timezone.now())

    page = text(client.get(reverse("groups:directory")))

    assert "Evening circle" in page
    assert "Relational trauma" in page
    assert "2 of 12" in page
    assert "Open" in page
    assert "<time datetime=" in page  # the next meeting
    assert "Hidden circle" not in page
    assert "Old circle" not in page


def test_the_directory_filters_by_topic_and_searches_by_name(client, group):
    make_group(name="Grief circle", slug="grief-circle", topic="grief")

    by_topic = text(client.get(reverse("groups:directory"), {"topic": "grief"}))
    assert "Grief circle" in by_topic
    assert "Evening circle" not in by_topic

    by_name = text(client.get(reverse("groups:directory"), {"q": "even"}))
    assert "Evening circle" in by_name
    assert "Grief circle" not in by_name

    nothing = text(client.get(reverse("groups:directory"), {"q": "zzz"}))
    assert "No groups match that just now" in nothing


def test_a_full_group_says_so_and_offers_the_waitlist(client, outsider):
    small = make_group(name="Pair", slug="pair", capacity=2)
    for _ in range(2):
        make_membership(small, make_member())
    assert "full, waitlist open" in text(client.get(reverse("groups:directory")))

    client.force_login(outsider)
    join_page = text(client.get(reverse("groups:join", kwargs={"slug": "pair"})))
    assert "This group is full right now" in join_page
    assert "Join the waitlist" in join_page

    response = client.post(
        reverse("groups:join", kwargs={"slug": "pair"}), {"agreement_version": 1, "accept": "on"}
    )
    assert response.status_code == 302
    assert WaitlistEntry.objects.filter(group=small, user=outsider, status="waiting").exists()
    assert not Membership.objects.filter(group=small, user=outsider).exists()


def test_the_directory_shows_a_members_unread_counts(client, group, member, facilitator):
    services.post_message(
        group,
        author=facilitator,
        client_id="11111111-1111-4111-8111-111111111111",
        body="Hello, circle",
    )
    client.force_login(member)
    page = text(client.get(reverse("groups:directory")))
    assert "1 unread message" in page


def test_joining_needs_the_agreement_ticked_and_changes_nothing_without_it(client, group, outsider):
    client.force_login(outsider)
    url = reverse("groups:join", kwargs={"slug": group.slug})
    page = text(client.get(url))
    assert group.agreement in page

    response = client.post(url, {"agreement_version": 1})
    assert response.status_code == 200
    assert "Please read the agreement and tick the box to join." in text(response)
    assert not Membership.objects.filter(group=group, user=outsider).exists()

    response = client.post(url, {"agreement_version": 1, "accept": "on"})
    assert response.status_code == 302
    membership = Membership.objects.get(group=group, user=outsider)
    assert membership.agreement_version == 1
    assert membership.agreement_accepted_at is not None


def test_joining_with_an_agreement_that_changed_meanwhile_shows_the_new_one(
    client, group, facilitator, outsider
):
    services.update_group(group, actor=facilitator, agreement="A new agreement, version two.")
    client.force_login(outsider)
    response = client.post(
        reverse("groups:join", kwargs={"slug": group.slug}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert response.status_code == 200
    page = text(response)
    assert "agreement changed while you were reading it" in page
    assert "A new agreement, version two." in page
    assert not Membership.objects.filter(group=group, user=outsider).exists()


def test_an_archived_group_refuses_joining_kindly(client, group, facilitator, outsider):
    services.archive_group(group, actor=facilitator)
    client.force_login(outsider)
    response = client.post(
        reverse("groups:join", kwargs={"slug": group.slug}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert response.status_code == 409
    assert "isn't taking new members" in text(response)
    assert not Membership.objects.filter(group=group, user=outsider).exists()


def test_a_banned_person_cannot_rejoin_by_themselves(client, group, member):
    Membership.objects.filter(group=group, user=member).update(status="banned")
    client.force_login(member)
    page = text(client.get(reverse("groups:detail", kwargs={"slug": group.slug})))
    assert "You can't rejoin this group yourself" in page
    response = client.post(
        reverse("groups:join", kwargs={"slug": group.slug}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert response.status_code == 403
    assert Membership.objects.get(group=group, user=member).status == "banned"


def test_the_join_page_tells_someone_removed_before_they_read_and_accept_the_agreement(
    client, group, facilitator, member
):
    Membership.objects.filter(group=group, user=member).update(status="removed")
    client.force_login(member)
    invite = services.create_invite(group, actor=facilitator)
    for url in [
        reverse("groups:join", kwargs={"slug": group.slug}),
        reverse("groups:invite", kwargs={"token": invite.token}),
    ]:
        response = client.get(url)
        assert response.status_code == 403, url
        page = text(response)
        assert "You can't rejoin this group yourself" in page
        assert 'name="accept"' not in page


def test_leaving_is_one_click_and_rejoining_undoes_it(client, group, member):
    client.force_login(member)
    response = client.post(reverse("groups:leave", kwargs={"slug": group.slug}), follow=True)
    page = text(response)
    assert "You've left Evening circle. You're welcome back whenever you like." in page
    assert Membership.objects.get(group=group, user=member).status == "left"

    client.post(
        reverse("groups:join", kwargs={"slug": group.slug}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert Membership.objects.get(group=group, user=member).status == "active"


def test_an_approval_group_takes_a_request_that_its_facilitator_approves(
    client, other_group, outsider
):
    client.force_login(outsider)
    client.post(
        reverse("groups:join", kwargs={"slug": other_group.slug}),
        {"agreement_version": 1, "accept": "on", "message": "I'd like a quiet place on mornings."},
    )
    join_request = JoinRequest.objects.get(group=other_group, user=outsider, status="pending")
    page = text(client.get(reverse("groups:detail", kwargs={"slug": other_group.slug})))
    assert "Your request to join is with the facilitators." in page

    alder = Membership.objects.get(group=other_group, role="facilitator").user
    client.force_login(alder)
    requests_page = client.get(reverse("groups:requests", kwargs={"slug": other_group.slug}))
    assert "I'd like a quiet place on mornings." in text(requests_page)
    client.post(
        reverse("groups:decide_request", kwargs={"slug": other_group.slug, "pk": join_request.pk}),
        {"decision": "approve", "note": "Welcome, we're glad you're here."},
    )
    join_request.refresh_from_db()
    assert join_request.status == "approved"
    assert join_request.note == "Welcome, we're glad you're here."
    assert Membership.objects.get(group=other_group, user=outsider).status == "active"


def test_a_decision_without_a_choice_is_refused_and_changes_nothing(client, other_group, outsider):
    services.join_group(other_group, user=outsider, agreement_version=1)
    join_request = JoinRequest.objects.get(group=other_group, user=outsider)
    alder = Membership.objects.get(group=other_group, role="facilitator").user
    client.force_login(alder)
    response = client.post(
        reverse("groups:decide_request", kwargs={"slug": other_group.slug, "pk": join_request.pk}),
        {"decision": "maybe"},
        follow=True,
    )
    assert "Please choose whether to welcome them." in text(response)
    join_request.refresh_from_db()
    assert join_request.status == "pending"


def test_a_member_cannot_edit_the_group_or_answer_requests(client, group, member, outsider):
    services.update_group(group, actor=make_facilitator(group), join_policy="approval")
    services.join_group(group, user=outsider, agreement_version=group.agreement_version)
    join_request = JoinRequest.objects.get(group=group, user=outsider)
    client.force_login(member)

    for url in [
        reverse("groups:edit", kwargs={"slug": group.slug}),
        reverse("groups:requests", kwargs={"slug": group.slug}),
        reverse("groups:invites", kwargs={"slug": group.slug}),
    ]:
        assert client.get(url).status_code == 403, url
    assert (
        client.post(
            reverse("groups:edit", kwargs={"slug": group.slug}), {"name": "Mine now"}
        ).status_code
        == 403
    )
    response = client.post(
        reverse("groups:decide_request", kwargs={"slug": group.slug, "pk": join_request.pk}),
        {"decision": "approve"},
    )
    assert response.status_code == 403
    assert (
        client.post(
            reverse("groups:archive", kwargs={"slug": group.slug}), {"archived": "on"}
        ).status_code
        == 403
    )
    group.refresh_from_db()
    assert group.name == "Evening circle"
    assert not group.is_archived
    join_request.refresh_from_db()
    assert join_request.status == "pending"


def make_facilitator(group):
    user = make_member()
    make_membership(group, user, role="facilitator")
    return user


def test_a_facilitator_of_one_group_cannot_act_on_another(
    client, group, facilitator, other_group, outsider
):
    services.join_group(other_group, user=outsider, agreement_version=1)
    join_request = JoinRequest.objects.get(group=other_group, user=outsider)
    invite = services.create_invite(
        other_group, actor=Membership.objects.get(group=other_group, role="facilitator").user
    )
    client.force_login(facilitator)

    slug = other_group.slug
    assert client.get(reverse("groups:edit", kwargs={"slug": slug})).status_code == 403
    assert (
        client.post(
            reverse("groups:decide_request", kwargs={"slug": slug, "pk": join_request.pk}),
            {"decision": "approve"},
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("groups:invites", kwargs={"slug": slug}), {"days": 7}).status_code
        == 403
    )
    assert (
        client.post(
            reverse("groups:revoke_invite", kwargs={"slug": slug, "pk": invite.pk})
        ).status_code
        == 403
    )
    # Reaching another group's request through one's own group's address finds nothing.
    assert (
        client.post(
            reverse("groups:decide_request", kwargs={"slug": group.slug, "pk": join_request.pk}),
            {"decision": "approve"},
        ).status_code
        == 404
    )
    join_request.refresh_from_db()
    invite.refresh_from_db()
    assert join_request.status == "pending"
    assert invite.revoked_at is None
    assert other_group.invites.count() == 1


def test_only_facilitators_and_moderators_start_groups(client, member, facilitator, moderator):
    data = {
        "name": "Quiet evenings",
        "slug": "quiet-evenings",
        "topic": "connection",
        "description": "Sitting together quietly.",
        "agreement": "We are gentle with each other.",
        "capacity": 12,
        "join_policy": "open",
        "is_listed": "on",
    }
    client.force_login(member)
    # Told at once, not after writing a whole group out.
    response = client.get(reverse("groups:create"))
    assert response.status_code == 403
    assert "Groups are started by facilitators and site moderators." in text(response)
    assert 'name="agreement"' not in text(response)
    assert client.post(reverse("groups:create"), data).status_code == 403
    assert not Group.objects.filter(slug="quiet-evenings").exists()

    client.force_login(facilitator)
    response = client.post(reverse("groups:create"), data)
    assert response.status_code == 302
    created = Group.objects.get(slug="quiet-evenings")
    assert Membership.objects.get(group=created, user=facilitator).role == "facilitator"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("capacity", 21, "less than or equal to 20"),
        ("capacity", 1, "greater than or equal to 2"),
        ("name", "", "This field is required"),
        ("topic", "astrology", "Select a valid choice"),
    ],
)
def test_a_group_form_with_bad_input_explains_and_saves_nothing(
    client, facilitator, field, value, message
):
    data = {
        "name": "Quiet evenings",
        "slug": "quiet-evenings",
        "topic": "connection",
        "description": "Sitting together quietly.",
        "agreement": "We are gentle with each other.",
        "capacity": 12,
        "join_policy": "open",
        field: value,
    }
    client.force_login(facilitator)
    response = client.post(reverse("groups:create"), data)
    assert response.status_code == 200
    assert message in text(response)
    assert not Group.objects.filter(slug="quiet-evenings").exists()


def test_a_taken_address_is_explained_on_the_form(client, group, facilitator):
    client.force_login(facilitator)
    response = client.post(
        reverse("groups:create"),
        {
            "name": "Second evening",
            "slug": group.slug,
            "topic": "connection",
            "description": "Another.",
            "agreement": "Gentle.",
            "capacity": 12,
            "join_policy": "open",
        },
    )
    assert "Another group already uses that address" in text(response)
    assert Group.objects.filter(slug=group.slug).count() == 1


def test_editing_the_agreement_asks_members_to_accept_it_again(client, group, facilitator, member):
    client.force_login(facilitator)
    client.post(
        reverse("groups:edit", kwargs={"slug": group.slug}),
        {
            "name": group.name,
            "topic": group.topic,
            "description": group.description,
            "agreement": "We listen. We also take breaks when we need them.",
            "capacity": 12,
            "join_policy": "open",
            "is_listed": "on",
        },
    )
    group.refresh_from_db()
    assert group.agreement_version == 2

    client.force_login(member)
    page = text(client.get(reverse("groups:detail", kwargs={"slug": group.slug})))
    assert "The group agreement has changed" in page
    stale = client.post(
        reverse("groups:agreement", kwargs={"slug": group.slug}), {"version": 1, "accept": "on"}
    )
    assert stale.status_code == 409
    assert not Membership.objects.get(group=group, user=member).agreement_is_current()
    client.post(
        reverse("groups:agreement", kwargs={"slug": group.slug}), {"version": 2, "accept": "on"}
    )
    assert Membership.objects.get(group=group, user=member).agreement_is_current()
    history = text(client.get(reverse("groups:agreement_history", kwargs={"slug": group.slug})))
    assert "Version 1" in history
    assert "Version 2" in history


def test_an_invite_link_seats_its_holder_until_it_expires_or_is_revoked(
    client, facilitator, outsider
):
    invite_group = make_group(name="Harbour", slug="harbour", join_policy="invite")
    make_membership(invite_group, facilitator, role="facilitator")
    client.force_login(outsider)
    refused = client.post(
        reverse("groups:join", kwargs={"slug": "harbour"}), {"agreement_version": 1, "accept": "on"}
    )
    assert refused.status_code == 403
    assert "by invitation" in text(refused)

    client.force_login(facilitator)
    client.post(reverse("groups:invites", kwargs={"slug": "harbour"}), {"days": 3})
    invite = Invite.objects.get(group=invite_group)
    page = text(client.get(reverse("groups:invites", kwargs={"slug": "harbour"})))
    assert reverse("groups:invite", kwargs={"token": invite.token}) in page
    bad_days = client.post(reverse("groups:invites", kwargs={"slug": "harbour"}), {"days": 90})
    assert bad_days.status_code == 200
    assert Invite.objects.filter(group=invite_group).count() == 1

    expired_holder = make_member()
    Invite.objects.filter(pk=invite.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1),
        created_at=timezone.now() - timedelta(days=4),
    )
    client.force_login(expired_holder)
    response = client.post(
        reverse("groups:invite", kwargs={"token": invite.token}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert response.status_code == 409
    assert "expired or was withdrawn" in text(response)
    assert not Membership.objects.filter(group=invite_group, user=expired_holder).exists()

    fresh = services.create_invite(invite_group, actor=facilitator, days=7)
    client.force_login(outsider)
    client.post(
        reverse("groups:invite", kwargs={"token": fresh.token}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert Membership.objects.get(group=invite_group, user=outsider).is_active

    client.force_login(facilitator)
    client.post(reverse("groups:revoke_invite", kwargs={"slug": "harbour", "pk": fresh.pk}))
    late = make_member()
    client.force_login(late)
    response = client.post(
        reverse("groups:invite", kwargs={"token": fresh.token}),
        {"agreement_version": 1, "accept": "on"},
    )
    assert response.status_code == 409
    assert not Membership.objects.filter(group=invite_group, user=late).exists()

    unknown = client.get(reverse("groups:invite", kwargs={"token": "not-a-real-token"}))
    assert unknown.status_code == 404
    assert "This invitation link doesn't work" in text(unknown)


def test_listening_is_a_choice_a_member_switches_on_and_off(client, group, member):
    client.force_login(member)
    client.post(reverse("groups:listening", kwargs={"slug": group.slug}), {"listening": "on"})
    assert Membership.objects.get(group=group, user=member).listening
    page = text(client.get(reverse("groups:detail", kwargs={"slug": group.slug})))
    assert "You're listening" in page
    client.post(reverse("groups:listening", kwargs={"slug": group.slug}), {})
    assert not Membership.objects.get(group=group, user=member).listening


def test_a_facilitator_archives_and_reopens_a_group(client, group, facilitator):
    client.force_login(facilitator)
    client.post(reverse("groups:archive", kwargs={"slug": group.slug}), {"archived": "on"})
    group.refresh_from_db()
    assert group.is_archived
    page = text(client.get(reverse("groups:detail", kwargs={"slug": group.slug})))
    assert "This group has closed" in page
    client.post(reverse("groups:archive", kwargs={"slug": group.slug}), {"archived": ""})
    group.refresh_from_db()
    assert not group.is_archived


def test_anonymous_visitors_see_the_group_but_are_asked_to_sign_in_to_join(client, group):
    page = text(client.get(reverse("groups:detail", kwargs={"slug": group.slug})))
    assert "to read the agreement and join" in page
    response = client.get(reverse("groups:join", kwargs={"slug": group.slug}))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_an_unknown_group_is_a_kind_404(client):
    response = client.get(reverse("groups:detail", kwargs={"slug": "nowhere"}))
    assert response.status_code == 404
