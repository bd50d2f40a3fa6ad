"""The notification bell in a real browser: a notification made on the server appears in the
bell, and is announced, without a reload."""

import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.steps import sign_in
from tests.factories import make_member

pytestmark = pytest.mark.e2e


@pytest.fixture
def willow(transactional_db):
    """Made before the browser starts (see tests/e2e/test_meetings.py)."""
    return make_member(display_name="Willow", email="willow@example.test")


def test_a_new_notification_appears_in_the_bell_without_a_reload(server, willow, page_factory):
    from community.models import NotificationKind
    from community.services import notify

    page = page_factory()
    sign_in(page, server.url, "willow@example.test")
    bell = page.get_by_role("link", name="Notifications", exact=True)
    bell.wait_for()
    page.wait_for_function("() => document.querySelector('[data-bell]').dataset.unread === '0'")
    assert_accessible(page)

    def server_side():
        # Off Playwright's event-loop thread, as a worker or a view would run it.
        try:
            notify(willow, kind=NotificationKind.REPORT_OUTCOME, title="Your report was looked at")
        finally:
            connection.close()

    thread = threading.Thread(target=server_side)
    thread.start()
    thread.join()

    page.get_by_role("link", name="Notifications, 1 unread").wait_for()
    assert page.locator("[data-bell-count]").inner_text() == "1"
    expect(page.locator("[data-bell-live]")).to_contain_text("Your report was looked at")

    page.get_by_role("link", name="Notifications, 1 unread").click()
    page.get_by_role("heading", name="Your report was looked at").wait_for()
    assert_accessible(page)
