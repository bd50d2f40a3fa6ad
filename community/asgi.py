"""ASGI entry point: HTTP through Django, WebSockets through Channels' router."""

import logging
import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 -- needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from community.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A foreign or missing Origin is refused at the handshake.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)


def _warm_up() -> None:
    """Compile the topic matchers every chat message runs (about a second of CPU) before the
    first message needs them. No database here: this runs at import, before any settings a
    test may change; moderation's rules are compiled on the room's first socket instead
    (groups.consumers). Best effort: what fails here is built on first use."""
    try:
        from groups.topics import message_topics

        message_topics("warming up", "warming up")
    except Exception:
        logging.getLogger(__name__).debug("Warm-up skipped.", exc_info=True)


threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
