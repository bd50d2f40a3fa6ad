"""A member reports a message from the room; a site moderator signs in to the admin with a
password and a TOTP code, claims the item and hides the message with a reason; the members'
open rooms show it hidden without a reload, and the audit log shows the action."""

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.db import connections
from playwright.sync_api import expect

from groups.models import Membership
from moderation.models import AuditEntry, QueueItem
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_chat import message, open_room
from tests.factories import PASSWORD, install_seed_data, make_member, make_membership

UNKIND = "Maybe some people here should just stop talking."
REASON = "Please keep replies kind; this one could hurt."
HIDDEN = "The moderators have hidden this message."


@pytest.fixture(autouse=True)
def _close_connections_of_the_browser_context(page_factory):
    yield
    connections.close_all()


def current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


def test_a_report_reaches_a_moderator_who_hides_the_message_live_for_everyone(
    server, page_factory, group, member, facilitator, moderator
):
    install_seed_data()  # the default rules and crisis resources (the test empties tables)
    Membership.objects.filter(user=facilitator).update(listening=True)
    rowan = make_member(display_name="Rowan")
    make_membership(group, rowan)
    willow = open_room(page_factory, server, member)
    maple = open_room(page_factory, server, facilitator)
    rowan_page = open_room(page_factory, server, rowan)
    rowan_page.get_by_label("Your message").fill(UNKIND)
    rowan_page.get_by_label("Your message").press("Enter")
    said = message(willow, UNKIND)  # arrived live: its report control is built by room.js
    expect(said).to_be_visible()

    # Willow reports it from the message's own control.
    said.get_by_text("Report this message").click()
    said.get_by_label("What's the problem?").select_option(label="Harassment or hostility")
    said.get_by_label("Anything a moderator should know? (optional)").fill("It felt aimed at me.")
    assert_accessible(willow)
    said.get_by_role("button", name="Send report").click()
    expect(said.get_by_role("status")).to_contain_text("won't know it was you")
    item = QueueItem.objects.get(kind="report")

    # Cedar signs in to the admin: password, then the code from an authenticator app.
    secret = generate_totp_secret()
    TOTP.activate(moderator, secret)
    cedar = page_factory()
    cedar.goto(server.url + "/admin/")
    cedar.get_by_label("Email").fill(moderator.email)
    cedar.get_by_label("Password").fill(PASSWORD)
    cedar.get_by_role("button", name="Sign In").click()
    cedar.locator("input[name=code]").fill(current_code(secret))
    cedar.locator("input[name=code]").press("Enter")
    cedar.wait_for_url(server.url + "/admin/")
    expect(cedar.get_by_role("heading", name="The queue")).to_be_visible()

    # The queue first; the item in context; claim; hide with a reason.
    cedar.get_by_role("link", name=str(item)).first.click()
    expect(cedar.get_by_text(UNKIND)).to_be_visible()
    assert_accessible(cedar)
    cedar.get_by_role("button", name="Claim this item").click()
    expect(cedar.get_by_text("You're looking after this item now.")).to_be_visible()
    hide = cedar.get_by_role("form", name="Hide the message")
    hide.get_by_label("Reason (the member reads it)").fill(REASON)
    assert_accessible(cedar)
    hide.get_by_role("button", name="Hide the message").click()
    expect(cedar.get_by_text("Done: Hid a message.")).to_be_visible()

    # Every open room shows it hidden, without a reload.
    for page in (willow, maple):
        expect(message(page, HIDDEN)).to_be_visible()
        expect(page.locator("#room-messages").get_by_text(UNKIND)).to_have_count(0)

    # The audit log shows the action (and never the message's words).
    cedar.goto(server.url + "/admin/moderation/auditentry/")
    row = cedar.locator("#result_list tbody tr").filter(has_text=REASON)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("hide")
    expect(cedar.locator("#result_list")).not_to_contain_text(UNKIND)
    assert AuditEntry.objects.filter(action="hide", actor=moderator, reason=REASON).exists()
