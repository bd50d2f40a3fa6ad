"""Personal content boundaries: choosing topics to soften, bad input, the page, and the
softened field each reader gets (frames, the room page, its history), and the content-note
suggestion on send."""

import uuid

import pytest
from django.core.cache import cache

from community.errors import DomainError, PermissionDenied
from groups import selectors, services
from groups.models import Message, RoomPreference

pytestmark = pytest.mark.django_db

GRIEF = {"value": "grief", "label": "Grief and loss", "phrase": "grief and loss"}


def stored_topics(user):
    return RoomPreference.objects.filter(user=user).values_list("soften_topics", flat=True).first()


def post(group, user, body, **extra):
    return services.post_message(group, author=user, client_id=uuid.uuid4(), body=body, **extra)


# --- The service ---------------------------------------------------------------------------------


def test_a_member_chooses_topics_to_soften_and_they_are_kept_in_list_order(member):
    chosen = services.set_content_boundaries(
        member, actor=member, topics=["medical", "grief", "grief"]
    )
    assert chosen == ["grief", "medical"]
    assert stored_topics(member) == ["grief", "medical"]
    assert selectors.content_boundaries(member) == {"grief", "medical"}


def test_choosing_none_clears_them(member):
    services.set_content_boundaries(member, actor=member, topics=["grief"])
    assert services.set_content_boundaries(member, actor=member, topics=[]) == []
    assert selectors.content_boundaries(member) == frozenset()


@pytest.mark.parametrize(
    "topics", [["grief", "spiders"], ["GRIEF"], [1], "grief", {"grief": True}, [None]]
)
def test_a_topic_outside_the_list_is_refused_clearly_and_changes_nothing(member, topics):
    services.set_content_boundaries(member, actor=member, topics=["medical"])

    with pytest.raises(DomainError) as refused:
        services.set_content_boundaries(member, actor=member, topics=topics)

    assert refused.value.code in {"unknown_topic", "bad_topics"}
    assert refused.value.message
    assert stored_topics(member) == ["medical"]


def test_only_the_member_sets_their_own_boundaries(member, facilitator):
    with pytest.raises(PermissionDenied):
        services.set_content_boundaries(member, actor=facilitator, topics=["grief"])
    assert stored_topics(member) is None


def test_saving_boundaries_tells_the_members_open_sockets(
    member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        services.set_content_boundaries(member, actor=member, topics=["grief"])
    assert len(callbacks) == 1  # boundaries.changed to the member's user group, after commit


# --- The page ------------------------------------------------------------------------------------


def test_the_boundaries_page_offers_every_topic_as_a_labelled_checkbox(client, member):
    services.set_content_boundaries(member, actor=member, topics=["grief"])
    client.force_login(member)
    response = client.get("/me/boundaries/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<legend>" in html
    assert html.count('type="checkbox" name="topics"') == 9
    assert 'value="grief" id="id_topics_7" checked' in html
    assert '<label for="id_topics_7">Grief and loss</label>' in html


def test_saving_the_page_stores_the_choice_and_says_so(client, member):
    client.force_login(member)
    response = client.post("/me/boundaries/", {"topics": ["grief", "self_harm"]}, follow=True)
    assert response.status_code == 200
    assert stored_topics(member) == ["self_harm", "grief"]
    assert "Saved." in response.content.decode()


def test_clearing_every_box_on_the_page_clears_the_boundaries(client, member):
    services.set_content_boundaries(member, actor=member, topics=["grief"])
    client.force_login(member)
    response = client.post("/me/boundaries/", {})
    assert response.status_code == 302
    assert stored_topics(member) == []


def test_a_topic_outside_the_list_on_the_page_is_a_400_that_changes_nothing(client, member):
    services.set_content_boundaries(member, actor=member, topics=["grief"])
    client.force_login(member)
    response = client.post("/me/boundaries/", {"topics": ["grief", "spiders"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert "“spiders”" in html
    assert "one of the topics you can choose" in html
    assert stored_topics(member) == ["grief"]


def test_the_page_is_for_signed_in_members(client):
    response = client.get("/me/boundaries/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_room_and_the_profile_link_to_the_page(client, group, member):
    client.force_login(member)
    assert 'href="/me/boundaries/"' in client.get("/groups/evening-circle/room/").content.decode()
    assert 'href="/me/boundaries/"' in client.get("/me/profile/").content.decode()


# --- What each reader gets -----------------------------------------------------------------------


def test_a_reader_with_a_boundary_gets_the_message_softened_and_others_do_not(
    group, member, facilitator
):
    payload = post(group, facilitator, "My dad died in March", suggest_note=False).payload
    softens = frozenset({"grief"})

    willow = selectors.frame_for_viewer(payload, viewer_id=member.pk, soften=softens)
    assert willow["softened"] == [GRIEF]
    assert willow["body"] == "My dad died in March"  # folded by the client, not withheld
    other = selectors.frame_for_viewer(payload, viewer_id=member.pk, soften={"medical"})
    assert other["softened"] == []
    # Never for one's own message, whatever one's boundaries.
    own = selectors.frame_for_viewer(payload, viewer_id=facilitator.pk, soften=softens)
    assert own["softened"] == []


def test_a_content_note_naming_a_topic_softens_the_message_for_that_reader(
    group, member, facilitator
):
    payload = post(group, facilitator, "Today was heavy", content_warning="loss").payload
    frame = selectors.frame_for_viewer(payload, viewer_id=member.pk, soften={"grief"})
    assert frame["softened"] == [GRIEF]


def test_the_room_page_folds_softened_messages_for_that_member_only(
    client, group, member, facilitator
):
    post(group, facilitator, "The funeral is on Friday")
    services.set_content_boundaries(member, actor=member, topics=["grief"])

    client.force_login(member)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert '<details class="chat-soft" id="msg-1-soft">' in html
    assert "A message about grief and loss" in html
    assert "chat-item-softened" in html

    client.force_login(facilitator)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert 'class="chat-soft"' not in html


def test_a_shared_check_in_whose_note_touches_a_softened_topic_folds_only_its_note(
    client, group, member, facilitator
):
    services.record_check_in(
        facilitator,
        group=group,
        presence=2,
        feelings=["sad"],
        note="Thinking of the funeral today",
        audience="group",
    )
    services.set_content_boundaries(member, actor=member, topics=["grief"])

    client.force_login(member)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert "Maple is a bit distant" in html  # the card itself shows
    assert '<details class="chat-soft" id="msg-1-soft">' in html

    client.force_login(facilitator)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert 'class="chat-soft"' not in html


def test_the_history_pages_carry_softened_for_the_reader(client, group, member, facilitator):
    for n in range(3):
        post(group, facilitator, f"hello {n}")
    post(group, facilitator, "The funeral is on Friday")
    services.set_content_boundaries(member, actor=member, topics=["grief"])
    client.force_login(member)
    page = client.get("/groups/evening-circle/room/history/?before=5").json()
    assert [m["softened"] for m in page["messages"]] == [[], [], [], [GRIEF]]


# --- The content-note suggestion -----------------------------------------------------------------


def test_a_send_touching_a_topic_without_a_note_is_suggested_one_and_nothing_is_stored(
    group, member
):
    client_id = uuid.uuid4()
    with pytest.raises(DomainError) as suggested:
        services.post_message(
            group,
            author=member,
            client_id=client_id,
            body="My dad died in March",
            suggest_note=True,
        )
    assert suggested.value.code == "suggest_content_note"
    assert suggested.value.details == {"topics": [GRIEF]}
    assert "This touches on grief and loss." in suggested.value.message
    assert not Message.objects.exists()

    result = services.post_message(
        group, author=member, client_id=client_id, body="My dad died in March", suggest_note=False
    )
    assert result.created
    assert result.message.topics == ["grief"]


def test_no_suggestion_with_a_content_note_or_for_words_on_no_topic(group, member):
    noted = post(group, member, "My dad died in March", content_warning="grief", suggest_note=True)
    plain = post(group, member, "Lovely walk today", suggest_note=True)
    assert noted.created and plain.created


def test_a_suggestion_does_not_use_up_the_rate_limit(group, member):
    cache.clear()
    for _ in range(12):
        with pytest.raises(DomainError) as suggested:
            post(group, member, "The funeral is on Friday", suggest_note=True)
        assert suggested.value.code == "suggest_content_note"
    for n in range(services.RATE_LIMIT_COUNT):
        post(group, member, f"hello {n}")
