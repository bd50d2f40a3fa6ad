"""Two members of a circle become safe persons in real browsers: one invites, the other
accepts, they talk one-to-one live, one shares "I feel distant right now" and the other sees it,
then one ends the connection and the room turns read-only for both."""

import pytest
from django.db import connections
from playwright.sync_api import expect

from groups.models import SafeConnection
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_chat import message
from tests.factories import make_session_key

SAFE_PERSONS = "/me/safe-persons/"


@pytest.fixture(autouse=True)
def _close_connections_of_the_browser_context(page_factory):
    yield
    connections.close_all()  # see tests/e2e/test_chat.py


def signed_in(page_factory, server, user):
    page = page_factory()
    page.context.add_cookies(
        [{"name": "sessionid", "value": make_session_key(user), "url": server.url}]
    )
    page.goto(server.url + SAFE_PERSONS)
    return page


def connected(page):
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()


def test_two_members_connect_talk_share_a_status_and_one_ends_it(
    server, page_factory, group, member, facilitator
):
    # Willow invites Maple, whom she knows from the Evening circle, by name.
    willow = signed_in(page_factory, server, member)
    willow.get_by_label("Who would you like to invite?").select_option("Maple")
    willow.get_by_role("button", name="Send the invitation").click()
    expect(willow.locator("#safe-sent")).to_contain_text("Maple: Not accepted yet")

    # Maple accepts and opens their private room.
    maple = signed_in(page_factory, server, facilitator)
    maple.get_by_role("button", name="Accept Willow's invitation").click()
    maple.get_by_role("link", name="Talk with Willow").click()
    expect(maple.get_by_role("heading", name="You and Willow")).to_be_visible()
    connected(maple)

    willow.reload()
    willow.get_by_role("link", name="Talk with Maple").click()
    connected(willow)
    assert_accessible(willow)

    # One-to-one, live both ways.
    willow.get_by_label("Your message").fill("Thank you for saying yes.")
    willow.get_by_label("Your message").press("Enter")
    expect(message(maple, "Thank you for saying yes.")).to_be_visible()
    maple.get_by_label("Your message").fill("I'm glad you asked.")
    maple.get_by_label("Your message").press("Enter")
    expect(message(willow, "I'm glad you asked.")).to_be_visible()

    # Willow shares a status; it needs no reply, and Maple sees it.
    willow.goto(server.url + SAFE_PERSONS)
    willow.get_by_label("In a few words").fill("I feel distant right now")
    willow.get_by_label("Show it").select_option(label="For 4 hours")
    willow.get_by_role("button", name="Share my status").click()
    expect(willow.locator("#safe-own-status")).to_contain_text("I feel distant right now")
    assert_accessible(willow)
    maple.reload()
    expect(maple.locator("#pair-status")).to_contain_text(
        "Willow's status: “I feel distant right now”"
    )

    # Maple ends the connection; no reason is asked, and Willow sees only that it ended.
    maple.get_by_text("End this connection").click()
    maple.get_by_role("button", name="End the connection with Willow").click()
    expect(maple.locator("#safe-connections")).to_contain_text("This connection has ended.")
    willow.goto(server.url + SAFE_PERSONS)
    expect(willow.locator("#safe-connections")).to_contain_text("This connection has ended.")
    expect(willow.locator("#safe-connections")).not_to_contain_text("I feel distant")
    willow.get_by_role("link", name="Read your past messages").click()
    expect(willow.locator("#pair-ended")).to_have_text("This connection has ended.")
    expect(message(willow, "I'm glad you asked.")).to_be_visible()
    expect(willow.get_by_label("Your message")).to_have_count(0)
    assert SafeConnection.objects.get().ended_at is not None
