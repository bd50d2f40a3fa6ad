"""A held message on the room page: its author sees it with a note; others see nothing of it."""

import html

import pytest
from django.urls import reverse

from tests.moderation.conftest import HELD, post

pytestmark = pytest.mark.django_db


def page(client, user, group) -> str:
    client.force_login(user)
    return html.unescape(
        client.get(reverse("groups:room", kwargs={"slug": group.slug})).content.decode()
    )


def test_the_author_sees_their_held_message_waiting_and_others_see_no_words(
    client, group, member, facilitator
):
    message = post(group, member, HELD)

    mine = page(client, member, group)
    assert "07700 900123" in mine
    note = '<p class="chat-held">Waiting for a moderator: only you can see this for now.</p>'
    assert note in mine

    theirs = page(client, facilitator, group)
    assert "07700 900123" not in theirs
    assert note not in theirs
    assert f'id="msg-{message.seq}" data-seq="{message.seq}" hidden' in theirs
