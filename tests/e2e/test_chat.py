"""Two members in two real browser contexts talk in the room, react, open a content-warned
message, hide their presence, and keep every message (and every change they missed) through a
server process dying under them; a member who sends too fast has the send retried for them."""

import re

import pytest
from django.db import connections
from playwright.sync_api import expect

from groups import services
from groups.models import Membership, Message
from tests.e2e.a11y import assert_accessible
from tests.factories import make_session_key

ROOM = "/groups/evening-circle/room/"


@pytest.fixture(autouse=True)
def _close_connections_of_the_browser_context(page_factory):
    """While Playwright's event loop runs, asgiref keys Django's connections by context, so
    this test's queries use a connection that pytest-django's teardown never sees. Hand it back
    before the browser closes, or the test database can't be dropped at the end."""
    yield
    connections.close_all()


def open_room(page_factory, server, user, *, check_in_offer=False):
    """The room, connected. The day's check-in offer (a modal dialog over the room) is answered
    beforehand unless ``check_in_offer``."""
    if not check_in_offer:
        services.skip_check_in_offer(user)
    page = page_factory()
    page.context.add_cookies(
        [{"name": "sessionid", "value": make_session_key(user), "url": server.url}]
    )
    page.goto(server.url + ROOM)
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
    return page


def message(page, text):
    return page.locator(".chat-item").filter(has_text=text)


def test_two_members_talk_live_react_open_a_content_note_and_lose_nothing_when_the_server_dies(
    server, page_factory, group, member, facilitator
):
    Membership.objects.filter(user=facilitator).update(listening=True)
    willow_user, maple_user = member, facilitator
    willow = open_room(page_factory, server, willow_user)
    maple = open_room(page_factory, server, maple_user)
    assert_accessible(willow)

    # Presence: each sees the other, with Maple's listen-only label.
    expect(willow.locator("#room-presence")).to_contain_text("Maple (listening)")
    expect(maple.locator("#room-presence")).to_contain_text("Willow")

    # Enter sends; Shift+Enter starts a new line.
    box = willow.get_by_label("Your message")
    box.fill("Hello Maple")
    box.press("Shift+Enter")
    box.type("it's good to see you")
    box.press("Enter")
    arrived = message(maple, "Hello Maple")
    expect(arrived).to_be_visible()
    expect(arrived.locator(".chat-body")).to_have_text("Hello Maple\nit's good to see you")
    expect(arrived.locator(".chat-author")).to_have_text("Willow")
    expect(maple.locator("#room-announcer")).to_have_text(
        "Willow: Hello Maple\nit's good to see you"
    )
    expect(box).to_have_value("")

    # A gentle reaction, counted for both.
    arrived.get_by_role("button", name="I hear you").click()
    mine = message(willow, "Hello Maple").get_by_role("button", name=re.compile("I hear you"))
    expect(mine).to_have_text("I hear you 1")
    expect(
        message(maple, "Hello Maple").get_by_role("button", name=re.compile("I hear you"))
    ).to_have_attribute("aria-pressed", "true")

    # A content note that names no topic on our list keeps the words folded for everyone until
    # the reader chooses to open them (tests/e2e/test_room_experience.py: one that does).
    willow.locator("#room-cw-toggle summary").click()
    willow.get_by_label("Content note", exact=True).fill("a long day")
    box.fill("The waiting room was the hardest part.")
    willow.get_by_role("button", name="Send", exact=True).click()
    folded = message(maple, "Content note: a long day")
    expect(folded).to_be_visible()
    expect(folded.get_by_text("The waiting room was the hardest part.")).to_be_hidden()
    folded.get_by_text("Content note: a long day").click()
    expect(folded.get_by_text("The waiting room was the hardest part.")).to_be_visible()
    assert_accessible(maple)

    # Hiding one's presence takes one out of the others' list.
    willow.get_by_label("Hide my presence").check()
    expect(maple.locator("#room-presence")).not_to_contain_text("Willow")
    expect(willow.locator("#room-presence-note")).to_have_text("You are hidden from this list.")

    # The server process dies under both. Willow writes while it is down; nothing is lost.
    server.kill()
    expect(willow.locator("#room-status")).to_have_text("Reconnecting…")
    box.fill("Are you still there?")
    box.press("Enter")
    # Meanwhile a change is made that no open socket can hear about (as through another
    # server process): it reaches both pages when they resume.
    services.toggle_reaction(group, user=maple_user, seq=1, reaction="heart")
    server.start()
    expect(willow.locator("#room-status")).to_have_text("Connected", timeout=30_000)
    expect(message(maple, "Are you still there?")).to_be_visible(timeout=30_000)
    for page in (willow, maple):
        expect(
            message(page, "Hello Maple").get_by_role("button", name=re.compile("Heart"))
        ).to_have_text("Heart 1", timeout=30_000)
    maple.get_by_label("Your message").fill("Still here.")
    maple.get_by_label("Your message").press("Enter")
    expect(message(willow, "Still here.")).to_be_visible()

    stored = list(Message.objects.order_by("seq").values_list("seq", flat=True))
    assert stored == [1, 2, 3, 4]
    for page in (willow, maple):
        shown = [int(s) for s in page.locator(".chat-item").evaluate_all(
            "items => items.map(i => i.dataset.seq)")]  # fmt: skip
        assert shown == stored
    assert_accessible(willow)


def test_scrolling_up_loads_older_pages_and_new_messages_never_pull_the_reader_down(
    server, page_factory, group, member, facilitator
):
    import uuid

    Message.objects.bulk_create(
        Message(group=group, seq=n, author=facilitator, client_id=uuid.uuid4(), body=f"note {n}")
        for n in range(1, 81)
    )
    willow = open_room(page_factory, server, member)
    items = willow.locator(".chat-item")
    expect(items).to_have_count(50)  # the newest page only, never the whole history
    assert_accessible(willow)

    willow.locator("#room-scroll").evaluate("node => { node.scrollTop = 0; }")
    expect(items).to_have_count(80)
    expect(items.first).to_contain_text("note 1")
    expect(willow.get_by_role("button", name="Show earlier messages")).to_be_hidden()

    # Reading old messages: a new one arrives, and the reader stays where they are.
    willow.locator("#room-scroll").evaluate("node => { node.scrollTop = 0; }")
    maple = open_room(page_factory, server, facilitator)
    maple.get_by_label("Your message").fill("A new note while you read")
    maple.get_by_label("Your message").press("Enter")
    expect(message(willow, "A new note while you read")).to_be_attached()
    assert willow.locator("#room-scroll").evaluate("node => node.scrollTop") == 0
    jump = willow.get_by_role("button", name="New messages below")
    expect(jump).to_be_visible()
    jump.click()
    expect(jump).to_be_hidden()
    expect(message(willow, "A new note while you read")).to_be_in_viewport()


def test_an_author_edits_and_deletes_their_own_message_in_the_browser(
    server, page_factory, group, member, facilitator
):
    willow = open_room(page_factory, server, member)
    maple = open_room(page_factory, server, facilitator)
    box = willow.get_by_label("Your message")
    box.fill("I feel tierd today")
    box.press("Enter")
    expect(message(maple, "I feel tierd today")).to_be_visible()

    willow.once("dialog", lambda dialog: dialog.accept("I feel tired today"))
    message(willow, "I feel tierd today").get_by_role("button", name="Edit").click()
    edited = message(maple, "I feel tired today")
    expect(edited).to_contain_text("edited")

    willow.once("dialog", lambda dialog: dialog.accept())
    message(willow, "I feel tired today").get_by_role("button", name="Delete").click()
    expect(maple.locator("#msg-1")).to_contain_text("This message was deleted.")
    expect(maple.get_by_text("I feel tired today")).to_have_count(0)
    assert_accessible(maple)


def test_a_send_refused_for_going_too_fast_is_retried_by_the_page_and_arrives(
    server, page_factory, group, member, facilitator
):
    willow = open_room(page_factory, server, member)
    maple = open_room(page_factory, server, facilitator)
    # One more than the 10 per 10 seconds the room allows, typed and sent with Enter inside the
    # page in one go: eleven Playwright round trips can take longer than the window on a busy
    # machine, and then nothing is refused.
    willow.evaluate(
        """() => {
          const box = document.getElementById("room-body");
          for (let n = 1; n <= 11; n++) {
            box.value = `quick note ${n}`;
            box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
          }
        }"""
    )
    # Ten posts are stored one after another first; on a busy machine that takes a while.
    expect(willow.locator("#room-error")).to_contain_text("Take a breath", timeout=20_000)
    # Retried with the same client_id once the window passes: arrives once, nothing lost.
    expect(message(maple, "quick note 11")).to_be_visible(timeout=20_000)
    expect(willow.locator("#room-error")).to_have_text("")
    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == [
        f"quick note {n}" for n in range(1, 12)
    ]
    expect(maple.locator(".chat-item")).to_have_count(11)
