"""Baseline 1: the stock Channels chat pattern, as the Channels tutorial writes it.

``group_send`` on every frame received, ``RedisChannelLayer`` (bench.baselines.stock_settings),
no storage, no ordering, no moderation, and no checks beyond the session that
``AuthMiddlewareStack`` reads at the handshake. This is the peer a Django developer would
otherwise ship. Served by the same uvicorn command and worker count as the full stack:

    DJANGO_SETTINGS_MODULE=bench.baselines.stock_settings \
        uvicorn bench.baselines.stock_channels:application --workers 2
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.stock_settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 -- needs Django set up first
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402


class ChatConsumer(AsyncWebsocketConsumer):
    """The tutorial's consumer (docs "Tutorial Part 3"), plus refusing anonymous sockets."""

    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close()
            return
        self.room_group_name = f"chat_{self.scope['url_route']['kwargs']['room_name']}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        if hasattr(self, "room_group_name"):
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        message = json.loads(text_data)["message"]
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"message": event["message"]}))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter([path("ws/groups/<slug:room_name>/", ChatConsumer.as_asgi())])
            )
        ),
    }
)
