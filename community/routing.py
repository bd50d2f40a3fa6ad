"""Every WebSocket route of the project, gathered from the apps."""

from django.urls import path

from community.consumers import NotificationConsumer
from groups.routing import websocket_urlpatterns as groups_websocket_urlpatterns

websocket_urlpatterns: list = [
    path("ws/me/", NotificationConsumer.as_asgi()),
    *groups_websocket_urlpatterns,
]
