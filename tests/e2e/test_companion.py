"""A member alone at night, in a real browser: she arrives in her circle's room, nobody else is
there, and she is offered the practice space. There the companion (the built-in flows) says it
is a program, walks her through grounding, helps her rehearse a share, and she posts it to her
group herself."""

from datetime import UTC, datetime

import pytest
from django.db import connections
from playwright.sync_api import expect

from community.models import User
from groups import services
from groups.models import Message
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_chat import message
from tests.factories import make_session_key

SHARE = "I've felt far away this week, and I'd like to say so tonight."


@pytest.fixture(autouse=True)
def _close_connections_of_the_browser_context(page_factory):
    yield
    connections.close_all()  # see tests/e2e/test_chat.py


def night_zone() -> str:
    """A time zone where it is about two in the morning now (Etc/GMT-3 is UTC+3)."""
    offset = (2 - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


# Quick taps can meet the room's rate limit (10 posts in any 10 s); the page then sends again
# by itself after the wait it was given, so each step may take a little longer than usual.
PATIENCE = 20_000


def companion_says(page, text):
    expect(page.locator(".chat-item-companion").filter(has_text=text).last).to_be_visible(
        timeout=PATIENCE
    )


def choose(page, label):
    """Press one of the replies the companion offers, once it offers it."""
    button = page.locator("#practice-choices").get_by_role("button", name=label, exact=True)
    expect(button).to_be_visible(timeout=PATIENCE)
    button.click()


def write(page, words):
    page.get_by_label("Your message").fill(words)
    page.get_by_label("Your message").press("Enter")


def test_alone_at_night_a_member_grounds_herself_rehearses_a_share_and_posts_it(
    server, page_factory, group, member
):
    User.objects.filter(pk=member.pk).update(time_zone=night_zone())
    # "Not today" is her local today in the new zone: from 12:00 UTC on, two in the morning
    # there is already tomorrow on the UTC calendar, and the check-in would be offered again.
    member.refresh_from_db(fields=["time_zone"])
    services.skip_check_in_offer(member)
    page = page_factory()
    page.context.add_cookies(
        [{"name": "sessionid", "value": make_session_key(member), "url": server.url}]
    )

    # Nobody else is in the Evening circle's room: the practice space is offered.
    page.goto(f"{server.url}/groups/{group.slug}/room/")
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
    offer = page.get_by_role("region", name="Nobody else is here just now")
    expect(offer).to_be_visible()
    assert_accessible(page)
    offer.get_by_role("link", name="Open the practice space").click()

    # It says what it is before anything opens.
    expect(page.get_by_role("heading", name="Practice space", level=1)).to_be_visible()
    expect(page.get_by_text("The companion here is a program, not a person.")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Open my practice space").click()

    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
    expect(page.locator("#practice-honesty")).to_contain_text("a program, not a person")
    companion_says(page, "I'm the practice companion: a program, not a person")

    # Grounding: slow breathing, then the five senses, in conversation.
    choose(page, "Grounding")
    companion_says(page, "Let's slow down together, Willow.")
    choose(page, "Breathe slowly")
    companion_says(page, "for a count of four")
    choose(page, "Done")
    companion_says(page, "notice what's around you: five things")
    choose(page, "Notice what's around me")
    companion_says(page, "five things you can see")
    write(page, "a lamp, a mug, my hands, the window, a book")
    expect(message(page, "a lamp, a mug, my hands")).to_be_visible()
    companion_says(page, "four things you can touch")
    for next_words in (
        "Three things you can hear",
        "Two things you can smell",
        "one thing you can taste",
        "You did that.",
    ):
        choose(page, "Done")
        companion_says(page, next_words)
    choose(page, "A little more here")
    companion_says(page, "Thank you for taking that time.")
    assert_accessible(page)

    # Rehearsing a share: kept as a draft, and nothing is posted by itself.
    choose(page, "Rehearse a share")
    companion_says(page, "What would you like to share at your next group meeting?")
    write(page, SHARE)
    companion_says(page, f"Here it is: “{SHARE}”")
    choose(page, "Yes, keep it")
    companion_says(page, "It's saved as your draft.")
    share = page.get_by_role("region", name="Your rehearsed share")
    expect(share).to_be_visible()
    expect(share.locator("blockquote")).to_have_text(SHARE)
    assert_accessible(page)
    assert not Message.objects.filter(group=group, author=member).exists()

    # She posts it herself, and it is in her circle's room as her own message.
    share.get_by_label("Which group?").select_option(label="Evening circle")
    share.get_by_role("button", name="Post it to the group").click()
    expect(page.get_by_role("heading", name="Evening circle", level=1)).to_be_visible()
    expect(page.get_by_text("Your share is in Evening circle's room now.")).to_be_visible()
    expect(message(page, SHARE)).to_be_visible()
    posted = Message.objects.get(group=group, author=member)
    assert posted.body == SHARE
