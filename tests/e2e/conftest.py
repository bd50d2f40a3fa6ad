"""Browser tests: Debian's chromium driven by Playwright against a real uvicorn process.

Every page a browser test visits is checked with axe-core; serious or critical violations fail.
"""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def browser(monkeypatch):
    """One chromium per test: Playwright's sync API holds an event loop open while it runs,
    which must not leak into the async tests that run later in the session."""
    # With that loop open, Django would refuse the ordinary blocking ORM calls a test makes
    # between browser steps. Only for this test, and never passed on to server processes.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(
                "CI must run the browser tests: chromium is missing (apt-get install chromium)."
            )
        pytest.skip("chromium is not installed here; `make browser` explains how to add it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-gpu"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def outbox(tmp_path):
    path = tmp_path / "outbox"
    path.mkdir()
    return path


@pytest.fixture
def server(transactional_db, outbox, tmp_path):
    from tests.servers import UvicornServer

    srv = UvicornServer(
        env={"EMAIL_URL": f"filemail:///{outbox}"}, log=tmp_path / "uvicorn.log"
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
