"""Steps a person takes in the browser, shared by the browser tests."""

from urllib.parse import urlsplit

from tests.factories import PASSWORD


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(base_url + "/")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()


def record_requests(page) -> list[str]:
    """Every URL ``page`` asks for from now on: each request (documents, scripts, styles,
    images, fonts, fetches) and each WebSocket it opens."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda socket: urls.append(socket.url))
    return urls


def assert_no_third_party_requests(urls: list[str], base_url: str) -> None:
    """Every URL is on the test server's origin (or a data:/blob: URL, which goes nowhere)."""
    server = urlsplit(base_url)
    elsewhere = [
        url
        for url in urls
        if urlsplit(url).scheme not in {"data", "blob"}
        and (urlsplit(url).hostname, urlsplit(url).port) != (server.hostname, server.port)
    ]
    assert urls, "no requests were recorded"
    assert not elsewhere, "Requests to somewhere other than this server:\n" + "\n".join(elsewhere)
