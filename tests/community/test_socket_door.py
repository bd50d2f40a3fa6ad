"""The way into every socket (community.socket_auth): what the consumer is handed, and that the
lean applications are served as ASGI 3 applications."""

import asyncio
import json

import pytest
from asgiref.compatibility import guarantee_single_callable
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.urls import path, re_path
from uvicorn.config import Config
from uvicorn.middleware.asgi2 import ASGI2Middleware

from community.asgi import application
from community.socket_auth import LeanAsgiMixin, SocketDoor, SocketSession
from groups.consumers import ChatConsumer
from tests.factories import make_session_key

pytestmark = pytest.mark.django_db(transaction=True)


class ScopeEcho(LeanAsgiMixin, AsyncWebsocketConsumer):
    """Accepts, then sends back what the scope says of who and where."""

    async def connect(self):
        await self.accept()
        session = self.scope["session"]
        await self.send(
            text_data=json.dumps(
                {
                    "user_id": self.scope["user"].pk,
                    "session_key": session.session_key,
                    "session_type": type(session).__name__,
                    "url_route": self.scope["url_route"],
                }
            )
        )


door = SocketDoor(
    [
        path("echo/<slug:slug>/", ScopeEcho.as_asgi()),
        re_path(r"^plain/(\d+)/$", ScopeEcho.as_asgi(), {"extra": "yes"}),
    ]
)


async def echo(target, headers):
    communicator = WebsocketCommunicator(door, target, headers=headers)
    connected, _ = await communicator.connect()
    try:
        return connected, (await communicator.receive_json_from()) if connected else None
    finally:
        await communicator.disconnect()


def origin_and_cookie(key=None):
    headers = [(b"origin", b"http://localhost")]
    if key:
        headers.append((b"cookie", f"sessionid={key}".encode()))
    return headers


async def test_a_signed_in_socket_gets_its_user_its_session_key_only_and_its_route(member):
    key = await database_sync_to_async(make_session_key)(member)
    connected, scope = await echo("/echo/quiet-harbour/", origin_and_cookie(key))
    assert connected
    assert scope == {
        "user_id": member.pk,
        "session_key": key,
        "session_type": SocketSession.__name__,
        "url_route": {"args": [], "kwargs": {"slug": "quiet-harbour"}},
    }


async def test_positional_arguments_and_defaults_reach_the_route_as_with_channels_router():
    connected, scope = await echo("/plain/42/", origin_and_cookie())
    assert connected
    assert scope["url_route"] == {"args": ["42"], "kwargs": {"extra": "yes"}}
    assert scope["user_id"] is None and scope["session_key"] is None


async def test_a_stale_session_cookie_gives_an_anonymous_socket_without_a_key(member):
    connected, scope = await echo("/echo/quiet-harbour/", origin_and_cookie("not-a-session"))
    assert connected
    assert scope["user_id"] is None and scope["session_key"] is None


async def test_a_foreign_origin_is_refused_before_anything_is_read():
    communicator = WebsocketCommunicator(
        door, "/echo/quiet-harbour/", headers=[(b"origin", b"http://evil.example.test")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_an_unknown_path_is_a_routing_error_as_with_channels_router():
    communicator = WebsocketCommunicator(door, "/nowhere/", headers=origin_and_cookie())
    with pytest.raises(ValueError, match="No route found"):
        await communicator.connect()


@pytest.mark.parametrize("app", [application, ChatConsumer.as_asgi(), ScopeEcho.as_asgi()], ids=str)
def test_the_lean_applications_are_served_as_asgi_3_not_wrapped_as_asgi_2(app):
    # uvicorn decides by whether calling the app is a coroutine function; asgiref likewise.
    config = Config(app=app, lifespan="off")
    config.load()
    assert not isinstance(config.loaded_app, ASGI2Middleware)
    assert guarantee_single_callable(app) is app
    coroutine = app({"type": "websocket", "path": "/ws/me/"}, None, None)
    assert asyncio.iscoroutine(coroutine)
    coroutine.close()
