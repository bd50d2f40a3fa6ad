"""Meetings in a real browser (Debian's chromium) against a real uvicorn process, with axe checks
on every page: a facilitator plans a weekly meeting, a member answers and finds their feed."""

import re

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.steps import sign_in
from tests.factories import make_group, make_member, make_membership, next_local

pytestmark = pytest.mark.e2e


@pytest.fixture
def lantern(transactional_db):
    """The cast, made before the browser starts: once Playwright's loop runs, ORM calls from the
    test would open a connection nobody closes."""
    group = make_group(name="Lantern circle", slug="lantern-circle")
    maple = make_member(display_name="Maple", email="maple@example.test", time_zone="Europe/London")
    willow = make_member(
        display_name="Willow", email="willow@example.test", time_zone="Europe/Berlin"
    )
    make_membership(group, maple, role="facilitator")
    make_membership(group, willow)
    return group


def test_a_facilitator_plans_a_weekly_meeting_and_a_member_answers(server, lantern, page_factory):
    start = next_local(1, 19)

    page = page_factory()
    sign_in(page, server.url, "maple@example.test")
    page.goto(f"{server.url}/groups/lantern-circle/meetings/")
    assert_accessible(page)
    page.get_by_role("link", name="Schedule a meeting").click()
    assert_accessible(page)
    page.get_by_label("Title").fill("Tuesday lantern")
    page.get_by_label("Date of the first meeting").fill(start.date().isoformat())
    page.get_by_label("Start time").fill("19:00")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_label("Length in minutes").fill("0")
    page.get_by_label("Every week").check()
    page.get_by_label("Number of meetings (optional)").fill("4")
    page.get_by_role("button", name="Schedule").click()
    # A kind message, in place, and the form keeps what was typed.
    assert page.get_by_text("A meeting needs to end after it starts").is_visible()
    assert_accessible(page)
    page.get_by_label("Length in minutes").fill("60")
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_url(re.compile(r"/meetings/\d+/$"))
    assert_accessible(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Tuesday lantern"
    page.get_by_role("link", name=re.compile(r"^Move the ")).first.click()
    assert_accessible(page)
    page.go_back()
    page.get_by_role("link", name=re.compile(r"^Cancel the ")).first.click()
    assert_accessible(page)

    member_page = page_factory()
    sign_in(member_page, server.url, "willow@example.test")
    member_page.goto(f"{server.url}/groups/lantern-circle/meetings/")
    assert_accessible(member_page)
    # 19:00 in London is 20:00 for Willow in Berlin.
    assert member_page.get_by_text(re.compile(r", 20:00")).first.is_visible()
    member_page.get_by_role("button", name="Going", exact=True).first.click()
    member_page.wait_for_url(f"{server.url}/groups/lantern-circle/meetings/")
    assert member_page.get_by_text("Your answer: going.").first.is_visible()
    assert_accessible(member_page)

    member_page.get_by_role("link", name=re.compile("private calendar feed")).click()
    assert_accessible(member_page)
    feed_url = member_page.get_by_label("Your private address").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/calendar/[\w-]+\.ics", feed_url)
    member_page.get_by_role("button", name="Replace my calendar address").click()
    assert_accessible(member_page)
    assert member_page.get_by_label("Your private address").input_value() != feed_url

    page.goto(f"{server.url}/groups/lantern-circle/meetings/")
    assert page.get_by_text(
        "Coming: Willow"
    ).first.is_visible()  # the facilitator sees who's coming
