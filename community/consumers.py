"""``/ws/me/``: the member's own socket, which keeps the notification bell current.

Server → client frames only: ``{"type": "unread", "count"}`` on connect (so a reconnect brings
the bell up to date) and whenever notifications are read, and ``{"type": "notification", "id",
"title", "url", "unread"}`` for each new one. The Origin check is the project's one
(``SocketDoor`` in front of every socket, community.socket_auth); signing out closes
the session's sockets.
"""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from community.realtime import notification_channel_group, session_channel_group
from community.selectors import unread_notification_count
from community.socket_auth import LeanAsgiMixin

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401


class NotificationConsumer(LeanAsgiMixin, AsyncWebsocketConsumer):
    async def connect(self):
        self.channel_groups: list[str] = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id = user.pk
        self.channel_groups = [notification_channel_group(user.pk)]
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            self.channel_groups.append(session_channel_group(session_key))
        for name in self.channel_groups:
            try:
                await self.channel_layer.group_add(name, self.channel_name)
            except Exception:
                # Redis is down: the client's reconnect (and the count sent then) catches up.
                logger.warning("Could not join channel group %s (Redis down?).", name)
        await self.accept()
        count = await database_sync_to_async(unread_notification_count)(user)
        await self._send({"type": "unread", "count": count})

    async def disconnect(self, code):
        for name in self.channel_groups:
            try:
                await self.channel_layer.group_discard(name, self.channel_name)
            except Exception:
                logger.warning("Could not leave channel group %s (Redis down?).", name)

    async def receive(self, text_data=None, bytes_data=None):
        """The client has nothing to say on this socket; frames are ignored."""

    async def _send(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame))

    async def notification_created(self, event):
        await self._send(
            {
                "type": "notification",
                "id": event["id"],
                "title": event["title"],
                "url": event["url"],
                "unread": event["unread"],
            }
        )

    async def notification_read(self, event):
        await self._send({"type": "unread", "count": event["unread"]})

    async def session_ended(self, event):
        await self.close(code=CLOSE_UNAUTHENTICATED)
