import re

from tests.e2e.a11y import assert_accessible


def read_latest_email(outbox) -> str:
    files = sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime)
    assert files, "no email was written to the outbox"
    return files[-1].read_text()


def test_a_newcomer_signs_up_verifies_the_email_signs_in_and_sees_home(
    server, page_factory, outbox
):
    page = page_factory()
    page.goto(server.url + "/")
    assert_accessible(page)
    page.get_by_role("link", name="Create an account").click()

    assert_accessible(page)
    page.get_by_label("Email").fill("brook@example.test")
    page.get_by_label("Display name").fill("Brook")
    page.get_by_label("Time zone").select_option("Europe/Lisbon")
    page.get_by_label("Password:", exact=True).fill("the tide comes in slowly")
    page.get_by_label("Password (again):", exact=True).fill("the tide comes in slowly")
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    assert_accessible(page)
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", read_latest_email(outbox)).group(
        0
    )
    page.goto(link)
    assert_accessible(page)
    page.get_by_role("button", name="Confirm").click()

    # Confirming signs the newcomer in (ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION); sign out and in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server.url + "/")
    page.goto(server.url + "/accounts/login/")
    assert_accessible(page)
    page.get_by_label("Email").fill("brook@example.test")
    page.get_by_label("Password").fill("the tide comes in slowly")
    page.get_by_role("button", name="Sign In").click()

    page.wait_for_url(server.url + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("A steady place")
    assert "Welcome back, Brook" in page.content()
    assert_accessible(page)
