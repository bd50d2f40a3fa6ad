"""The practice pages: an honest introduction before anything opens, the space itself (the
room page, saying at the top that the companion is a program), the offered replies as JSON,
posting a rehearsed share, clearing the space, the offer in an empty circle room, the menu
link, and the admin's note on whether a model is on."""

import pytest
from django.test import Client
from django.urls import reverse

from companion.models import PracticeSpace
from groups.models import Message
from tests.companion.conftest import fresh

pytestmark = pytest.mark.django_db

PRACTICE = "/me/practice/"


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


def test_the_introduction_says_what_it_is_and_opens_only_when_asked(member, client_for):
    client = client_for(member)
    page = client.get(PRACTICE).content.decode()
    assert "a program, not a person" in page
    assert "Only you." in page and "only if you say yes" in page
    assert "Open my practice space" in page
    assert not PracticeSpace.objects.exists()  # looking changes nothing

    response = client.post(reverse("companion:open"))
    assert response.url == PRACTICE
    room = client.get(PRACTICE).content.decode()
    assert 'id="practice-honesty"' in room and "a program, not a person" in room
    assert "Companion (a program)" in room  # the greeting, named as a program
    assert "js/room-practice.js" in room and "js/room.js" in room
    assert 'id="room-suggest"' not in room  # no content-note prompt in a private space
    assert 'class="secondary practice-choice">Grounding</button>' in room


def test_the_state_lists_the_offered_replies_for_the_owner_only(space, member, write, client_for):
    assert client_for(member).get(reverse("companion:state")).json()["choices"][0] == "Grounding"
    write(space, "Grounding")
    state = client_for(member).get(reverse("companion:state")).json()
    assert state["choices"] == ["Breathe slowly", "Notice what's around me", "Stop here"]
    from tests.factories import make_member

    stranger = client_for(make_member()).get(reverse("companion:state")).json()
    assert stranger == {
        "open": False,
        "choices": [],
        "draft": None,
        "crisis": False,
        "support": None,
    }


def test_a_rehearsed_share_is_posted_from_the_page_to_the_chosen_circle(
    space, member, group, write, client_for
):
    write(space, "Rehearse a share")
    write(space, "Tonight I'd like to say I'm glad to be here.")
    write(space, "Yes, keep it")
    client = client_for(member)
    page = client.get(PRACTICE).content.decode()
    assert "Your rehearsed share" in page and "Post it to the group" in page
    assert f'<option value="{group.slug}">Evening circle</option>' in page

    response = client.post(reverse("companion:share"), {"group": group.slug})
    posted = Message.objects.get(group=group)
    assert response.url == f"/groups/{group.slug}/room/#msg-{posted.seq}"
    assert posted.author == member and posted.body.startswith("Tonight I'd like")
    assert "Posted to" in client.get(PRACTICE).content.decode()


def test_posting_without_a_share_or_a_group_posts_nothing_and_says_why(
    space, member, group, client_for
):
    client = client_for(member)
    response = client.post(reverse("companion:share"), {"group": group.slug}, follow=True)
    assert "no rehearsed share to post yet" in response.content.decode()
    response = client.post(reverse("companion:share"), {}, follow=True)
    assert "Please choose a group" in response.content.decode()
    assert not Message.objects.filter(group=group).exists()


def test_clearing_needs_the_box_ticked(space, member, write, client_for):
    write(space, "Grounding")
    client = client_for(member)
    kept = client.post(reverse("companion:clear"), {}, follow=True).content.decode()
    assert "Nothing was cleared" in kept and PracticeSpace.objects.exists()
    cleared = client.post(reverse("companion:clear"), {"confirm": "on"}, follow=True)
    assert "Your practice space is cleared" in cleared.content.decode()
    assert not PracticeSpace.objects.exists()
    assert "Open my practice space" in cleared.content.decode()


def test_a_circle_room_carries_the_offer_for_when_nobody_else_is_there(member, group, client_for):
    page = client_for(member).get(reverse("groups:room", args=[group.slug])).content.decode()
    assert 'id="room-practice-offer"' in page and 'data-me="Willow"' in page
    assert "js/room-practice-offer.js" in page
    assert "Nobody else is here just now" in page


def test_the_members_menu_links_to_the_practice_space(member, client_for):
    assert f'href="{PRACTICE}"' in client_for(member).get("/").content.decode()


def test_a_practice_room_reached_by_its_room_address_goes_to_the_practice_page(
    space, member, client_for
):
    response = client_for(member).get(reverse("groups:room", args=[space.room.slug]))
    assert response.url == PRACTICE


def test_the_admin_says_whether_the_generative_model_is_on(moderator, settings, client_for):
    settings.ADMIN_REQUIRE_MFA = False
    client = client_for(moderator)
    page = client.get("/admin/").content.decode()
    assert "Generative model off" in page
    settings.COMPANION_API_BASE = "http://127.0.0.1:8080/v1"
    settings.COMPANION_MODEL = "small-local-model"
    page = client.get("/admin/").content.decode()
    assert "Generative model on: “small-local-model” at 127.0.0.1:8080" in page


def test_an_empty_or_oversized_message_is_refused_kindly_and_the_companion_stays_quiet(
    space, member
):
    import uuid

    from community.errors import DomainError
    from groups import services as group_services

    for body in ("", "   ", "x" * 4001):
        with pytest.raises(DomainError) as refused:
            group_services.post_message(
                space.room, author=member, client_id=uuid.uuid4(), body=body
            )
        assert refused.value.code in ("empty_body", "body_too_long")
    assert fresh(space).answered_seq == 0
    assert Message.objects.filter(group=space.room).count() == 1  # the greeting only
