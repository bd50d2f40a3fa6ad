"""Finding and joining a group in a real browser (Debian's chromium) against a real uvicorn
process, with axe checks on every page: a newcomer finds a group, reads and accepts its
agreement, joins, answers the next meeting and downloads it; a facilitator welcomes a request."""

import re
from pathlib import Path

import pytest
from icalendar import Calendar

from tests.e2e.a11y import assert_accessible
from tests.e2e.steps import sign_in
from tests.factories import make_group, make_meeting, make_member, make_membership

pytestmark = pytest.mark.e2e


@pytest.fixture
def circles(transactional_db):
    """Made before the browser starts: once Playwright's loop runs, ORM calls from the test
    would open connections nobody closes."""
    lantern = make_group(
        name="Lantern circle",
        slug="lantern-circle",
        description="A steady weekly circle for evenings.",
        agreement="We listen without fixing.\nWhat is shared here stays here.",
    )
    make_group(name="Grief circle", slug="grief-circle", topic="grief")
    mornings = make_group(name="Morning circle", slug="morning-circle", join_policy="approval")
    maple = make_member(display_name="Maple", email="maple@example.test", time_zone="Europe/London")
    make_member(display_name="Heron", email="heron@example.test", time_zone="Europe/Berlin")
    make_membership(lantern, maple, role="facilitator")
    make_membership(mornings, maple, role="facilitator")
    make_meeting(lantern, actor=maple, title="Lantern evening")
    return lantern, mornings


def test_a_newcomer_finds_a_group_accepts_its_agreement_joins_and_answers_the_next_meeting(
    server, circles, page_factory
):
    page = page_factory()
    sign_in(page, server.url, "heron@example.test")
    page.get_by_role("link", name="Groups", exact=True).click()
    assert_accessible(page)

    page.get_by_label("Topic").select_option("relational")
    page.get_by_label("Search by name").fill("lantern")
    page.get_by_role("button", name="Show groups").click()
    assert page.get_by_role("link", name="Grief circle").count() == 0
    card = page.locator(".group-card", has_text="Lantern circle")
    assert "1 of 12" in card.inner_text()
    assert "Open" in card.inner_text()
    card.get_by_role("link", name="Lantern circle").click()
    assert_accessible(page)

    page.get_by_role("link", name="Read the agreement and join").click()
    assert page.get_by_text("What is shared here stays here.").is_visible()
    assert_accessible(page)
    # Without ticking the box nothing happens but a kind word.
    page.get_by_role("button", name="Join the group").click()
    assert page.get_by_text("Please read the agreement and tick the box to join.").is_visible()
    assert_accessible(page)
    page.get_by_label("I've read the group agreement").check()
    page.get_by_role("button", name="Join the group").click()
    page.wait_for_url(f"{server.url}/groups/lantern-circle/")
    assert page.get_by_text("Welcome to Lantern circle.").is_visible()
    assert_accessible(page)

    # The next meeting, in Heron's time zone: 19:00 London is 20:00 Berlin.
    assert page.get_by_text(re.compile(r", 20:00")).first.is_visible()
    page.get_by_role("button", name="Going", exact=True).first.click()
    assert page.get_by_text("Your answer: going.").first.is_visible()
    assert_accessible(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Lantern evening.*calendar")).first.click()
    calendar = Calendar.from_ical(Path(download_info.value.path()).read_bytes())
    events = calendar.walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Lantern evening · Lantern circle"]


def test_a_facilitator_welcomes_a_request_to_join(server, circles, page_factory):
    heron = page_factory()
    sign_in(heron, server.url, "heron@example.test")
    heron.goto(f"{server.url}/groups/morning-circle/")
    heron.get_by_role("link", name="Read the agreement and ask to join").click()
    heron.get_by_label("I've read the group agreement").check()
    heron.get_by_label("A few words for the facilitators (optional)").fill("Mornings are hard.")
    heron.get_by_role("button", name="Ask to join").click()
    assert heron.get_by_text("Your request to join is with the facilitators.").is_visible()
    assert_accessible(heron)

    maple = page_factory()
    sign_in(maple, server.url, "maple@example.test")
    maple.goto(f"{server.url}/groups/morning-circle/")
    maple.get_by_role("link", name=re.compile(r"Join requests \(1 waiting\)")).click()
    assert maple.get_by_text("Mornings are hard.").is_visible()
    assert_accessible(maple)
    maple.get_by_label("A kind note to them (optional)").fill("Welcome, we're glad you came.")
    maple.get_by_role("button", name="Welcome Heron").click()
    assert maple.get_by_text("Heron has joined the group.").is_visible()
    assert maple.get_by_text("No one is waiting for an answer.").is_visible()
    assert_accessible(maple)

    heron.reload()
    assert heron.get_by_text("You're a member of this group.").is_visible()
    heron.get_by_role("link", name="Go to the room").click()
    heron.wait_for_url(f"{server.url}/groups/morning-circle/room/")
