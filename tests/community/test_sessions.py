"""A member's signed-in sessions (allauth.usersessions): listed with a short device name and an
approximate time and network, each can be ended; ending one signs that browser out and closes
its open sockets at once, and no other session's."""

import html

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from community import services
from community.asgi import application
from community.data_selectors import describe_user_agent
from community.errors import NotFound

pytestmark = pytest.mark.django_db

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def browser(user, *, agent=FIREFOX_WINDOWS, ip="203.0.113.57") -> Client:
    """A browser signed in as ``user`` that has made one request (so its session is listed)."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    client.force_login(user)
    assert client.get(reverse("profile")).status_code == 200
    return client


def session_id(client) -> int:
    from allauth.usersessions.models import UserSession

    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return UserSession.objects.get(session_key=key).pk


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (EDGE_MAC, "Edge on macOS"),
        (CHROME_ANDROID, "Chrome on Android"),
        ("", "An unknown browser or app"),
    ],
)
def test_a_user_agent_is_described_as_browser_and_system(agent, described):
    assert describe_user_agent(agent) == described


def test_the_sessions_page_lists_each_browser_with_device_and_approximate_time_and_network(
    member,
):
    laptop = browser(member, agent=FIREFOX_WINDOWS, ip="203.0.113.57")
    browser(member, agent=SAFARI_IPHONE, ip="198.51.100.23")
    page = html.unescape(laptop.get(reverse("my_sessions")).content.decode())
    assert "Firefox on Windows" in page and "(this browser)" in page
    assert "Safari on iPhone" in page
    assert "203.0.113.x" in page and "198.51.100.x" in page
    assert "203.0.113.57" not in page and "198.51.100.23" not in page  # never the full address
    assert "ago" in page or "now" in page  # approximate times


def test_ending_another_session_signs_that_browser_out_and_keeps_this_one(member):
    laptop = browser(member, agent=FIREFOX_WINDOWS)
    phone = browser(member, agent=SAFARI_IPHONE)
    response = laptop.post(reverse("session_end", kwargs={"pk": session_id(phone)}))
    assert response.status_code == 302 and response["Location"] == reverse("my_sessions")
    assert phone.get(reverse("profile")).status_code == 302  # to the sign-in page
    assert laptop.get(reverse("profile")).status_code == 200
    page = html.unescape(laptop.get(reverse("my_sessions")).content.decode())
    assert "Safari on iPhone" not in page


def test_ending_this_session_signs_this_browser_out(member):
    laptop = browser(member)
    response = laptop.post(reverse("session_end", kwargs={"pk": session_id(laptop)}))
    assert response["Location"] == reverse("account_login")
    assert laptop.get(reverse("profile")).status_code == 302


def test_someone_elses_session_cant_be_ended(member, outsider):
    willows = browser(member)
    herons = browser(outsider)
    response = herons.post(reverse("session_end", kwargs={"pk": session_id(willows)}))
    assert response.status_code == 404
    assert willows.get(reverse("profile")).status_code == 200
    with pytest.raises(NotFound):
        services.end_member_session(member, session_id=session_id(willows), actor=outsider)


# --- Sockets -----------------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://localhost:8000")


async def connect(path, client):
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    comm = WebsocketCommunicator(
        application, path, headers=[ORIGIN, (b"cookie", f"sessionid={key}".encode())]
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def closed_with(comm, *, timeout):
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code")


@pytest.mark.django_db(transaction=True)
async def test_ending_a_session_closes_its_sockets_at_once_and_no_others(group, member):
    phone = await database_sync_to_async(browser)(member, agent=SAFARI_IPHONE)
    laptop = await database_sync_to_async(browser)(member, agent=FIREFOX_WINDOWS)
    phone_room = await connect(f"/ws/groups/{group.slug}/", phone)
    phone_me = await connect("/ws/me/", phone)
    laptop_room = await connect(f"/ws/groups/{group.slug}/", laptop)
    laptop_me = await connect("/ws/me/", laptop)
    try:
        ended = await database_sync_to_async(session_id)(phone)
        await database_sync_to_async(services.end_member_session)(
            member, session_id=ended, actor=member
        )
        # Faster than the sockets' periodic session check: the session.ended event did it.
        assert await closed_with(phone_room, timeout=1.5) == 4401
        assert await closed_with(phone_me, timeout=1.5) == 4401
        for comm in (laptop_room, laptop_me):
            while not await comm.receive_nothing(timeout=2):
                output = await comm.receive_output()
                assert output["type"] != "websocket.close"
    finally:
        await laptop_room.disconnect()
        await laptop_me.disconnect()
        await get_channel_layer().flush()
