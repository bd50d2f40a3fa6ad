"""Every WebSocket route of the project, gathered from the apps."""

from groups.routing import websocket_urlpatterns as groups_websocket_urlpatterns

websocket_urlpatterns: list = [*groups_websocket_urlpatterns]
