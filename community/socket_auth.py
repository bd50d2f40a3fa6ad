"""The way into every WebSocket (``SocketDoor``): the Origin checked, the signed-in user and their
session's key read, the route matched, all once, at the handshake, in one step.

Channels' stack for this is four layers (``AllowedHostsOriginValidator``, then
``AuthMiddlewareStack``'s cookies, session and user layers, then ``URLRouter``), each a
coroutine that awaits the next one for as long as the socket lives, keeping its frame, its own
copy of the scope and whatever it read (the cookies, the session's decoded data). The session
layer also wraps ``send`` so that a session changed during the connection is saved and its
cookie set: a socket here never changes the session (signing in and out are pages; a socket only
learns that its session ended, ``community.realtime.session_channel_group``), so that wrapper
checked the session on every frame a socket sent for nothing, once per member for every message
in a room. With thousands of sockets per process both add up (bench/ scenarios (b) and (c),
docs/performance.md). Here the checks are Channels' and Django's own (``OriginValidator``'s
rule for ``ALLOWED_HOSTS``, ``channels.auth.get_user``, Django's URL patterns); only the
layering is gone: what the handshake read is dropped once it is decided, and the socket's
application is awaited by one coroutine, with one copy of the scope.

The scope gets ``user``, the signed-in user or ``AnonymousUser`` exactly as
``channels.auth.get_user`` decides (no session, an expired one, or one whose password hash no
longer matches); ``session``, which keeps only the session's ``session_key`` (None without a
session): nothing reads or writes a session's data through a socket; and ``url_route``, as
Channels' ``URLRouter`` sets it.

``ProtocolRouter`` and ``LeanAsgiMixin.as_asgi`` hand over the next application's coroutine
instead of awaiting it in one of their own, for the same reason: a frame less for each socket's
lifetime, with the same behaviour.
"""

from __future__ import annotations

import functools
from importlib import import_module
from urllib.parse import urlparse

from asgiref.sync import markcoroutinefunction
from channels.auth import get_user
from channels.routing import ProtocolTypeRouter
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
from django.conf import settings
from django.http.cookie import parse_cookie


class SocketSession:
    """What a socket keeps of its session: the key its sign-out is announced under."""

    __slots__ = ("session_key",)

    def __init__(self, session_key: str | None):
        self.session_key = session_key


class SocketDoor:
    """The WebSocket application: the Origin (refused as Channels' ``OriginValidator`` refuses
    it), then the route among ``urlpatterns`` (Django ``path()``/``re_path()`` entries whose
    views are ASGI applications, as for Channels' ``URLRouter``; no nesting), then the user
    and session from the session cookie."""

    def __init__(self, urlpatterns):
        self.routes = list(urlpatterns)
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore
        # Channels' rule for which origins may open a socket (ALLOWED_HOSTS, and DEBUG's local
        # names), used for its check only.
        self.origins = AllowedHostsOriginValidator(None)

    async def __call__(self, scope, receive, send):
        application, scope = await self._admit(scope)
        return await application(scope, receive, send)

    async def _admit(self, scope) -> tuple:
        """The application to run and its scope. Everything read to decide (cookies, the
        session's data) ends with this call, not with the socket."""
        if scope["type"] != "websocket":
            raise ValueError("SocketDoor serves WebSocket connections only.")
        if not self._origin_allowed(scope):
            return WebsocketDenier(), scope
        application, url_route = self._route(scope)
        user, session_key = await self._user(scope)
        return application, {
            **scope,
            "user": user,
            "session": SocketSession(session_key),
            "url_route": url_route,
            "path_remaining": "",
        }

    def _origin_allowed(self, scope) -> bool:
        try:
            return self.origins.valid_origin(_origin(scope))
        except ValueError:
            # Unparseable (``http://[::1``, a port past 65535): refused like a missing Origin,
            # where Channels' validator raised and the handshake ended in a server error.
            return False

    def _route(self, scope) -> tuple:
        """As Channels' outermost ``URLRouter`` matches (``root_path`` honoured)."""
        path = scope.get("path")
        if path is None:
            raise ValueError("No 'path' key in connection scope, cannot route URLs")
        root_path = scope.get("root_path", "")
        if root_path and not path.startswith(root_path):
            raise ValueError(f"No route found for path {path!r}.")
        path = path[len(root_path) :].lstrip("/")
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                _rest, args, kwargs = match
                return route.callback, {
                    "args": tuple(args),
                    "kwargs": {**kwargs, **route.default_args},
                }
        raise ValueError(f"No route found for path {path!r}.")

    async def _user(self, scope) -> tuple:
        cookies = {}
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        session = self.session_store(cookies.get(settings.SESSION_COOKIE_NAME))
        user = await get_user({"session": session})
        # Its key only if it is still a session (a mismatched hash flushes it: no key).
        return user, session.session_key if user.is_authenticated else None


def _origin(scope):
    """The handshake's Origin, parsed, as ``OriginValidator`` reads it (None if absent)."""
    parsed = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            parsed = urlparse(value.decode("latin1"))
    return parsed


class ProtocolRouter(ProtocolTypeRouter):
    """Channels' ``ProtocolTypeRouter``, handing over the protocol's application's coroutine
    instead of awaiting it in its own."""

    def __call__(self, scope, receive, send):
        if scope["type"] not in self.application_mapping:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        return self.application_mapping[scope["type"]](scope, receive, send)


# Servers and asgiref tell an ASGI 3 application from an ASGI 2 one by whether calling it is a
# coroutine function; this one returns the coroutine that the call would have awaited.
markcoroutinefunction(ProtocolRouter.__call__)


class LeanAsgiMixin:
    """For consumers: ``as_asgi()`` whose application returns the new consumer's coroutine
    instead of awaiting it in its own (Channels' ``as_asgi``, less one frame per socket)."""

    @classmethod
    def as_asgi(cls, **initkwargs):
        def app(scope, receive, send):
            return cls(**initkwargs)(scope, receive, send)

        app.consumer_class = cls
        app.consumer_initkwargs = initkwargs
        functools.update_wrapper(app, cls, updated=())
        return markcoroutinefunction(app)
