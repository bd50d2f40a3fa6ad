"""Steps a person takes in the browser, shared by the browser tests."""

from tests.factories import PASSWORD


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(base_url + "/")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
