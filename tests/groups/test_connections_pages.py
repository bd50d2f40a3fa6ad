"""The safe-persons pages and the pair room page: inviting by name, accepting, status and
availability forms, an ended room read-only; and a pair never shown where circles are."""

import html

import pytest
from django.urls import reverse

from groups import selectors
from groups.models import AvailabilityWindow, SafeConnection, SafePersonInvite
from tests.factories import make_member, make_membership
from tests.groups.test_connections import connect, snapshot

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def rowan(group):
    user = make_member(display_name="Rowan", email="rowan@example.test")
    make_membership(group, user)
    return user


# --- Pairs are not circles --------------------------------------------------------------------


def test_a_pair_never_appears_where_circles_do(client, group, member, facilitator):
    room = connect(member, facilitator).room
    client.force_login(member)

    assert room not in selectors.directory_groups()
    assert [m.group for m in selectors.my_memberships(member)] == [group]
    directory = text(client.get(reverse("groups:directory")))
    assert "Evening circle" in directory
    assert room.slug not in directory
    assert room.name not in directory
    assert client.get(reverse("groups:detail", kwargs={"slug": room.slug})).status_code == 404
    assert client.get(reverse("groups:meetings", kwargs={"slug": room.slug})).status_code == 404
    assert client.post(reverse("groups:leave", kwargs={"slug": room.slug})).status_code == 404
    circle_room = client.get(reverse("groups:room", kwargs={"slug": room.slug}))
    assert circle_room.status_code == 302
    assert circle_room["Location"] == reverse("groups:safe_person_room", kwargs={"slug": room.slug})


# --- Pages ------------------------------------------------------------------------------------


def test_the_safe_persons_page_invites_by_name_and_the_invitee_accepts(
    client, group, member, facilitator
):
    client.force_login(member)
    page = text(client.get(reverse("groups:safe_persons")))
    assert "Maple" in page  # someone to invite, by name
    response = client.post(
        reverse("groups:safe_person_invite"), {"person": "Maple", "note": "Hello"}
    )
    assert response.status_code == 302
    invite = SafePersonInvite.objects.get()
    assert "Not accepted yet" in text(client.get(reverse("groups:safe_persons")))

    client.force_login(facilitator)
    page = text(client.get(reverse("groups:safe_persons")))
    assert "Willow, from Evening circle, would like you as a safe person." in page
    client.post(reverse("groups:safe_person_accept", kwargs={"pk": invite.pk}))
    connection = SafeConnection.objects.get()
    room_page = text(
        client.get(reverse("groups:safe_person_room", kwargs={"slug": connection.room.slug}))
    )
    assert "You and Willow" in room_page
    assert 'id="checkin-dialog"' not in room_page
    assert 'id="room-round"' not in room_page
    assert f"/ws/groups/{connection.room.slug}/" in room_page


def test_inviting_someone_not_on_the_list_changes_nothing(client, group, member, outsider):
    client.force_login(member)
    before = snapshot()
    response = client.post(reverse("groups:safe_person_invite"), {"person": "Heron"})
    assert response.status_code == 400
    assert "isn't someone you can invite" in text(response)
    assert snapshot() == before


def test_status_and_availability_forms_and_an_ended_room_page(client, group, member, facilitator):
    connection = connect(member, facilitator)
    client.force_login(member)
    client.post(
        reverse("groups:safe_person_status"), {"text": "I feel distant right now", "hours": "4"}
    )
    client.post(
        reverse("groups:safe_person_availability"),
        {"days": ["0", "1", "2", "3", "4"], "start": "18:00", "end": "21:00"},
    )
    assert AvailabilityWindow.objects.get(user=member).days == [0, 1, 2, 3, 4]

    client.force_login(facilitator)
    page = text(client.get(reverse("groups:safe_persons")))
    assert "“I feel distant right now”" in page
    assert "Weekdays" in page
    client.post(reverse("groups:safe_person_end", kwargs={"pk": connection.pk}))

    client.force_login(member)
    room_page = text(
        client.get(reverse("groups:safe_person_room", kwargs={"slug": connection.room.slug}))
    )
    assert "This connection has ended." in room_page
    assert 'id="room-form"' not in room_page
    assert "This connection has ended." in text(client.get(reverse("groups:safe_persons")))


def test_a_pair_room_is_not_found_for_anyone_else(client, group, member, facilitator, rowan):
    room = connect(member, facilitator).room
    client.force_login(rowan)
    url = reverse("groups:safe_person_room", kwargs={"slug": room.slug})
    assert client.get(url).status_code == 404
