"""Who is on the other end of a WebSocket: the signed-in user and their session's key, read
once at the handshake (``SocketAuthMiddlewareStack``).

Channels' ``AuthMiddlewareStack`` does the same reading in three layers (cookies, session,
user), each with a copy of the scope that lives as long as the socket, and its session layer
also wraps ``send`` so that a session changed during the connection is saved and its cookie set.
A socket here never changes the session (signing in and out are pages; a socket only learns
that its session ended, ``community.realtime.session_channel_group``), so that wrapper checked
the session on every frame a socket sent for nothing: once per member for every message in a
room. And an idle socket kept its cookies, its session's data and three scopes. With thousands
of sockets per process both add up (bench/ scenarios (b) and (c), docs/performance.md).

The scope gets ``user``, the signed-in user or ``AnonymousUser`` exactly as
``channels.auth.get_user`` decides (no session, an expired one, or one whose password hash no
longer matches), and ``session``, which keeps only the session's ``session_key`` (None without
a session): nothing reads or writes a session's data through a socket.
"""

from __future__ import annotations

from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie


class SocketSession:
    """What a socket keeps of its session: the key its sign-out is announced under."""

    __slots__ = ("session_key",)

    def __init__(self, session_key: str | None):
        self.session_key = session_key


class SocketAuthMiddleware:
    """Put ``user`` and ``session`` (a ``SocketSession``) into the scope, from the session
    cookie."""

    def __init__(self, inner):
        self.inner = inner
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        cookies = {}
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        session = self.session_store(cookies.get(settings.SESSION_COOKIE_NAME))
        user = await get_user({"session": session})
        # Its key only if it is still a session (a mismatched hash flushes it: no key).
        key = session.session_key if user.is_authenticated else None
        return await self.inner(
            {**scope, "user": user, "session": SocketSession(key)}, receive, send
        )


def SocketAuthMiddlewareStack(inner):
    """Named like Channels' ``AuthMiddlewareStack``, which it replaces for every socket."""
    return SocketAuthMiddleware(inner)
