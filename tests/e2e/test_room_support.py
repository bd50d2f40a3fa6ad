"""Moderation in the room, in a real browser: crisis language brings the author support
privately, "I need help now" does the same, and a held message waits only in its author's view."""

import pytest
from django.db import connections
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.test_chat import open_room
from tests.factories import install_seed_data


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    install_seed_data()  # flag rules and crisis resources, as the data migrations install them
    yield
    connections.close_all()  # see tests/e2e/test_chat.py


def test_crisis_words_bring_the_author_support_privately_and_the_room_still_sees_them(
    server, page_factory, group, member, facilitator
):
    willow = open_room(page_factory, server, member)
    maple = open_room(page_factory, server, facilitator)

    box = willow.get_by_label("Your message")
    box.fill("I can't go on anymore, I just want it all to stop.")
    box.press("Enter")

    support = willow.get_by_role("region", name="Support, just for you")
    expect(support).to_be_visible()
    expect(support).to_contain_text("Samaritans")
    assert_accessible(willow)
    # Never hidden or held for it: the room sees the message, and not the support.
    expect(maple.locator(".chat-item").filter(has_text="I can't go on anymore")).to_be_visible()
    expect(maple.get_by_role("region", name="Support, just for you")).to_be_hidden()


def test_i_need_help_now_shows_support_without_a_message(server, page_factory, group, member):
    willow = open_room(page_factory, server, member)
    willow.get_by_role("button", name="I need help now").click()
    expect(willow.get_by_role("region", name="Support, just for you")).to_be_visible()


def test_a_held_message_waits_in_its_authors_view_only(
    server, page_factory, group, member, facilitator
):
    willow = open_room(page_factory, server, member)
    maple = open_room(page_factory, server, facilitator)

    box = willow.get_by_label("Your message")
    box.fill("You can call me on 07700 900123 any evening.")
    box.press("Enter")
    box.fill("Thank you for tonight.")
    box.press("Enter")

    expect(willow.locator(".chat-held")).to_have_text(
        "Waiting for a moderator: only you can see this for now."
    )
    expect(maple.locator(".chat-item").filter(has_text="Thank you for tonight.")).to_be_visible()
    expect(maple.get_by_text("07700 900123")).to_have_count(0)
