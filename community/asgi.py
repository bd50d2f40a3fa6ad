"""ASGI entry point: HTTP through Django, WebSockets through ``SocketDoor`` (community.socket_auth)."""

import gc
import logging
import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from community.routing import websocket_urlpatterns  # noqa: E402 -- needs Django set up first
from community.socket_auth import ProtocolRouter, SocketDoor  # noqa: E402

application = ProtocolRouter(
    {
        "http": django_asgi_app,
        # A foreign or missing Origin is refused at the handshake; the route, the session and
        # the user are read once, there (community.socket_auth).
        "websocket": SocketDoor(websocket_urlpatterns),
    }
)


def _warm_up() -> None:
    """Compile the topic matchers every chat message runs (about a second of CPU) before the
    first message needs them. No database here: this runs at import, before any settings a
    test may change; moderation's rules are compiled on the room's first socket instead
    (groups.consumers). Best effort: what fails here is built on first use.

    Then the garbage collector is told to leave everything made so far alone for good
    (``gc.freeze``: Django, the URL patterns, the compiled matchers: objects that live as long
    as the process) and to collect less often. Its full collections walk every object that
    isn't frozen, and with hundreds of sockets per process they paused the server for 50 to
    300 ms at a time, the whole of the chat's p99 (bench/, docs/performance.md)."""
    try:
        from groups.topics import message_topics

        message_topics("warming up", "warming up")
    except Exception:
        logging.getLogger(__name__).debug("Warm-up skipped.", exc_info=True)
    gc.collect()
    gc.freeze()
    # Python's defaults are (700, 10, 10): a young collection every 700 allocations.
    gc.set_threshold(*GC_THRESHOLDS)


# Young collections every 10,000 net allocations instead of 700, and a full one considered only
# every 50 x 100 young ones (as always, only once the long-lived objects grew by a quarter): at
# 150 chat messages a second that is a full collection every few minutes rather than every few
# seconds. Young collections stay frequent enough for the garbage of a burst of handshakes
# (uvicorn leaves each upgraded connection's HTTP protocol as a reference cycle) to be freed
# while the burst goes on, not kept as the process's high-water mark: at 50,000 an idle server
# kept about 4 KB more per socket (bench/ scenario (c)).
GC_THRESHOLDS = (10_000, 50, 100)


threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
