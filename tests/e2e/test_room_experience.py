"""The room as a place to be, in a real browser with three people: a check-in shared with the
group, a go-around where one member shares and one passes, a content-noted message folded only
for the member who asked for that topic to be softened, and stepping away and back.

Set SCREENSHOTS_DIR (``make screenshots``) to refresh the pictures in docs/screenshots/.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from groups import services
from groups.models import CheckIn, RoomPreference
from tests.e2e.a11y import assert_accessible
from tests.e2e.steps import assert_no_third_party_requests, record_requests
from tests.e2e.test_chat import message, open_room
from tests.factories import install_seed_data, make_member, make_membership, make_session_key


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    install_seed_data()  # flag rules and crisis resources, as the data migrations install them
    yield
    connections.close_all()  # see tests/e2e/test_chat.py


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: docs/screenshots/ when refreshing them, else a throwaway folder."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return lambda page, name: page.screenshot(path=folder / f"{name}.png", full_page=True)


def _past_check_ins(user, group):
    """A fortnight of earlier private check-ins, so the history chart has a shape."""
    now = timezone.now()
    for days_ago, presence in [(13, 2), (11, 3), (9, 2), (7, 4), (5, 3), (3, 4), (1, 5)]:
        check_in = services.record_check_in(
            user, group=group, presence=presence, feelings=["tired"], audience="private"
        )
        CheckIn.objects.filter(pk=check_in.pk).update(created_at=now - timedelta(days=days_ago))
    # Recording them answered today's offer; today the member hasn't been asked yet.
    RoomPreference.objects.filter(user=user).update(check_in_offered_on=None)


def test_three_people_check_in_go_around_fold_a_softened_topic_and_step_away_and_back(
    server, page_factory, group, member, facilitator, shots
):
    rowan_user = make_member(display_name="Rowan")
    make_membership(group, rowan_user)
    _past_check_ins(member, group)

    # Willow asks for grief and loss to be softened, on her boundaries page.
    willow = page_factory()
    requests = record_requests(willow)  # nothing she loads may come from anyone else
    willow.context.add_cookies(
        [{"name": "sessionid", "value": make_session_key(member), "url": server.url}]
    )
    willow.goto(server.url + "/me/boundaries/")
    willow.locator("input[name=topics][value=grief]").check()
    willow.locator("#boundaries-save").click()
    expect(willow.locator("input[name=topics][value=grief]")).to_be_checked()
    assert_accessible(willow)

    maple = open_room(page_factory, server, facilitator)
    rowan = open_room(page_factory, server, rowan_user)

    # Willow arrives: the day's check-in is offered, and she shares hers with the group.
    willow.goto(server.url + f"/groups/{group.slug}/room/")
    dialog = willow.locator("#checkin-dialog")
    expect(dialog).to_be_visible()
    willow.locator("#checkin-presence-3").check()
    willow.locator("#checkin-feeling-tired").check()
    willow.locator("#checkin-feeling-hopeful").check()
    willow.locator("#checkin-note").fill("Arriving slowly after a long week.")
    willow.locator("#checkin-audience-group").check()
    assert_accessible(willow)
    shots(willow, "check-in-dialog")
    willow.locator("#checkin-save").click()
    expect(dialog).to_be_hidden()
    card = maple.locator(".chat-item-checkin").filter(has_text="Willow")
    expect(card).to_contain_text("partly here")
    expect(card).to_contain_text("hopeful")
    expect(card).to_contain_text("Arriving slowly after a long week.")
    card.get_by_role("button", name="I hear you").click()
    expect(willow.locator(".chat-item-checkin .chat-count")).to_have_text("1")

    # Maple starts a round: everyone present gets a turn, in the order they joined.
    expect(maple.locator("#room-presence")).to_contain_text("Rowan")
    expect(maple.locator("#room-presence")).to_contain_text("Willow")
    maple.locator("#room-round-start-summary").click()
    maple.locator("#room-round-prompt-input").fill("One word for how you arrived today")
    # Join order, with Maple moving herself to the end.
    order = maple.locator("#room-round-order li")
    expect(order).to_have_count(3)
    for _ in range(2):
        if "Maple" not in order.last.inner_text():
            maple.get_by_role("button", name="Move Maple down").click()
    expect(order.last).to_contain_text("Maple")
    maple.locator("#room-round-start").click()
    for page in (maple, willow, rowan):
        expect(page.locator("#room-round-prompt")).to_have_text(
            "One word for how you arrived today"
        )
    # Willow's turn: she shares one word. Nobody else is offered the share box meanwhile.
    expect(willow.locator("#room-round-share-form")).to_be_visible()
    expect(rowan.locator("#room-round-share-form")).to_be_hidden()
    expect(rowan.locator("#room-round-now")).to_contain_text("Willow")
    willow.locator("#room-round-share-body").fill("Tired")
    willow.locator("#room-round-share").click()
    expect(message(maple, "Tired")).to_be_visible()
    # Rowan's turn: a pass, no reason asked.
    expect(rowan.locator("#room-round-share-form")).to_be_visible()
    rowan.locator("#room-round-pass").click()
    turns = maple.locator("#room-round-turns")
    expect(turns.locator("li").filter(has_text="Willow")).to_contain_text("shared")
    expect(turns.locator("li").filter(has_text="Rowan")).to_contain_text("passed")
    # Maple's own turn last; she closes the round for everyone.
    expect(maple.locator("#room-round-share-form")).to_be_visible()
    maple.locator("#room-round-end").click()
    expect(rowan.locator("#room-round-now")).to_contain_text("The round has ended")
    assert_accessible(maple)
    shots(maple, "room")

    # Rowan writes about grief; the room suggests a content note and Rowan adds it.
    box = rowan.get_by_label("Your message")
    box.fill("I keep thinking about my grandmother's funeral this week.")
    box.press("Enter")
    expect(rowan.locator("#room-suggest")).to_be_visible()
    rowan.locator("#room-suggest-add").click()
    words = "I keep thinking about my grandmother's funeral this week."
    # Open for Maple, with the note as a label; folded for Willow, who softens grief.
    expect(message(maple, words).locator(".chat-cw-label")).to_be_visible()
    expect(message(maple, words).locator(".chat-body")).to_be_visible()
    folded = willow.locator(".chat-item").filter(has_text="Content note:").last
    expect(folded).to_be_visible()
    expect(folded.get_by_text(words)).to_be_hidden()
    folded.locator(".chat-cw summary").click()
    expect(folded.get_by_text(words)).to_be_visible()

    # Willow steps away: a grounding screen, "taking a break" for the others, and on her
    # return what she missed is marked as new.
    willow.locator("#room-step-away").click()
    grounding = willow.locator("#room-grounding")
    expect(grounding).to_be_visible()
    expect(willow.locator("#room-grounding-heading")).to_be_focused()
    expect(maple.locator("#room-presence")).to_contain_text("Willow (taking a break)")
    assert_accessible(willow)
    shots(willow, "grounding")
    maple.get_by_label("Your message").fill("Welcome back whenever you're ready.")
    maple.get_by_label("Your message").press("Enter")
    # It reaches Willow's page while she is away (behind the grounding screen).
    expect(message(willow, "Welcome back whenever")).to_have_count(1)
    willow.locator("#room-back").click()
    expect(grounding).to_be_hidden()
    divider = willow.locator("#room-away-divider")
    expect(divider).to_be_visible()
    expect(
        willow.locator("#room-away-divider + .chat-item").filter(
            has_text="Welcome back whenever you're ready."
        )
    ).to_be_visible()
    expect(maple.locator("#room-presence")).not_to_contain_text("taking a break")

    # Her check-in history, as a chart rendered on the server.
    willow.goto(server.url + "/me/check-ins/")
    expect(willow.locator("svg#checkin-chart")).to_be_visible()
    expect(willow.locator("#checkin-history")).to_contain_text("Arriving slowly")
    assert_accessible(willow)
    shots(willow, "check-in-history")

    # Boundaries, room (with its socket, check-in, round and grounding screen) and history:
    # every request went to this server; no fonts, scripts or pixels from anyone else.
    for path in ("/me/boundaries/", f"/groups/{group.slug}/room/", "/me/check-ins/"):
        assert server.url + path in requests
    assert any(url.startswith("ws") for url in requests)
    assert_no_third_party_requests(requests, server.url)
