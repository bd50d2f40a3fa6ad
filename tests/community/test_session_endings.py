"""Everything that ends sessions, in one place: signing out, a new password (changed or reset),
a ban and erasing the account. Each one ends the sessions it should, and every socket those
sessions have open (the room's and ``/ws/me/``) closes at once, over the real channel layer
(Redis pub/sub), faster than the room socket's own periodic check.

| Event | Sessions that end | Sockets that close |
| --- | --- | --- |
| signing out | this browser's | this browser's |
| password changed | every one, this browser's too | all of the member's |
| password reset by email | every one | all of the member's |
| ban | every one (and no new sign-in) | all of the member's |
| account erased | every one | all of the member's |
"""

from __future__ import annotations

import re

import pytest
from allauth.usersessions.models import UserSession
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from community.asgi import application
from community.realtime import session_channel_group
from community.services import erase_account
from moderation import services as moderation
from tests.factories import PASSWORD, install_seed_data
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "slow-river-morning-17"
ORIGIN = (b"origin", b"http://localhost:8000")
# Under the room socket's 2 s periodic check: a close within this came from the event.
AT_ONCE = 1.5


def signed_in(user, *, agent: str) -> Client:
    """A browser signed in as ``user`` through the sign-in form (so allauth records the
    session, as it does for a person)."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR="203.0.113.9")
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, "the sign-in should succeed"
    assert client.get(reverse("profile")).status_code == 200
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("profile")).status_code == 200


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_sockets(client: Client, group) -> list[WebsocketCommunicator]:
    cookie = (b"cookie", f"sessionid={session_key(client)}".encode())
    sockets = []
    for path in (f"/ws/groups/{group.slug}/", "/ws/me/"):
        comm = WebsocketCommunicator(application, path, headers=[ORIGIN, cookie])
        connected, _ = await comm.connect(timeout=5)
        assert connected, path
        sockets.append(comm)
    return sockets


async def close_code(comm: WebsocketCommunicator) -> int | None:
    """The code the socket closes with within ``AT_ONCE`` seconds (frames before it skipped)."""
    while True:
        output = await comm.receive_output(timeout=AT_ONCE)
        if output["type"] == "websocket.close":
            return output.get("code")


async def stays_open(comm: WebsocketCommunicator) -> bool:
    while not await comm.receive_nothing(timeout=2.5):  # past one periodic check
        if (await comm.receive_output())["type"] == "websocket.close":
            return False
    return True


async def two_browsers(member, group):
    laptop = await database_sync_to_async(signed_in)(member, agent="Firefox laptop")
    phone = await database_sync_to_async(signed_in)(member, agent="Safari phone")
    return laptop, phone, await open_sockets(laptop, group), await open_sockets(phone, group)


async def recorded_sessions(member) -> int:
    return await UserSession.objects.filter(user=member).acount()


async def test_signing_out_ends_this_browsers_session_and_sockets_and_no_other(group, member):
    laptop, phone, laptop_sockets, phone_sockets = await two_browsers(member, group)
    try:
        ended = session_key(laptop)
        response = await database_sync_to_async(laptop.post)(reverse("account_logout"))
        assert response.status_code == 302

        assert [await close_code(c) for c in laptop_sockets] == [4401, 4401]
        assert not await database_sync_to_async(is_signed_in)(laptop)
        assert not await UserSession.objects.filter(session_key=ended).aexists()
        for comm in phone_sockets:
            assert await stays_open(comm)
        assert await database_sync_to_async(is_signed_in)(phone)
        assert await recorded_sessions(member) == 1
    finally:
        for comm in phone_sockets:
            await comm.disconnect()


async def test_changing_the_password_ends_every_session_and_closes_every_socket(group, member):
    laptop, phone, laptop_sockets, phone_sockets = await two_browsers(member, group)
    response = await database_sync_to_async(laptop.post)(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    for comm in laptop_sockets + phone_sockets:
        assert await close_code(comm) == 4401
    assert not await database_sync_to_async(is_signed_in)(laptop)
    assert not await database_sync_to_async(is_signed_in)(phone)
    assert await recorded_sessions(member) == 0
    # The new password works; the old one doesn't.
    fresh = Client()
    assert await database_sync_to_async(fresh.login)(email=member.email, password=NEW_PASSWORD)


async def test_a_wrong_current_password_changes_nothing_and_ends_no_session(group, member):
    laptop, _phone, laptop_sockets, phone_sockets = await two_browsers(member, group)
    try:
        response = await database_sync_to_async(laptop.post)(
            reverse("account_change_password"),
            {
                "oldpassword": "not-my-password",
                "password1": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
            },
        )
        assert response.status_code == 200  # the form again, with its error
        for comm in laptop_sockets + phone_sockets:
            assert await stays_open(comm)
        assert await recorded_sessions(member) == 2
    finally:
        for comm in laptop_sockets + phone_sockets:
            await comm.disconnect()


async def test_resetting_the_password_by_email_ends_every_session_and_closes_every_socket(
    group, member
):
    laptop, phone, laptop_sockets, phone_sockets = await two_browsers(member, group)
    stranger = Client()  # the person who opens the reset email, perhaps on a third device
    await database_sync_to_async(stranger.post)(
        reverse("account_reset_password"), {"email": member.email}
    )
    link = re.search(r"https?://[^/\s]+(/\S+/)", mail.outbox[-1].body).group(1)
    form = await database_sync_to_async(stranger.get)(link, follow=True)
    response = await database_sync_to_async(stranger.post)(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    for comm in laptop_sockets + phone_sockets:
        assert await close_code(comm) == 4401
    assert not await database_sync_to_async(is_signed_in)(laptop)
    assert not await database_sync_to_async(is_signed_in)(phone)
    assert await recorded_sessions(member) == 0


async def test_a_ban_ends_every_session_and_closes_every_socket(group, member, moderator):
    await database_sync_to_async(install_seed_data)()  # the rules that flag the message
    message = await database_sync_to_async(post)(group, member, FLAGGED)
    item = await database_sync_to_async(item_for)(message)
    laptop, phone, laptop_sockets, phone_sockets = await two_browsers(member, group)

    item = await database_sync_to_async(moderation.claim_item)(item, moderator=moderator)
    await database_sync_to_async(moderation.ban_member)(
        item, actor=moderator, reason="Threats toward another member."
    )

    for comm in laptop_sockets + phone_sockets:
        assert await close_code(comm) == 4401
    assert await recorded_sessions(member) == 0
    for key in (session_key(laptop), session_key(phone)):
        assert not await UserSession.objects.filter(session_key=key).aexists()
    assert not await database_sync_to_async(is_signed_in)(laptop)
    assert not await database_sync_to_async(is_signed_in)(phone)
    again = Client()
    assert not await database_sync_to_async(again.login)(email=member.email, password=PASSWORD)


async def test_erasing_the_account_ends_every_session_and_closes_every_socket(group, member):
    laptop, phone, laptop_sockets, phone_sockets = await two_browsers(member, group)

    await database_sync_to_async(erase_account)(member, password=PASSWORD, keep_messages=False)

    for comm in laptop_sockets + phone_sockets:
        assert await close_code(comm) in {4401, 4403}
    assert not await database_sync_to_async(is_signed_in)(laptop)
    assert not await database_sync_to_async(is_signed_in)(phone)
    assert await recorded_sessions(member) == 0


def test_each_sessions_sockets_share_one_channel_group_named_without_the_secret_key():
    # The session key is a bearer secret: Redis only ever sees a digest of it.
    name = session_channel_group("k" * 32)
    assert "k" * 32 not in name and name.startswith("session.")
