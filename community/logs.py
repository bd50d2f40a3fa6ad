"""Logging filters that keep members' words, cookies and addresses out of the server's logs.

uvicorn hands its own logger (``uvicorn.error``) to the websockets library, which at DEBUG logs
every frame's text (message bodies, check-in notes) and every handshake header (the session
cookie); and uvicorn's INFO lines for each WebSocket carry the client's address. Production
runs uvicorn at ``warning`` (the ``Procfile``), where none of this is logged; this filter keeps
a debugging session (``--log-level debug``) from writing it either. ``LOGGING`` in
``community/settings.py`` installs it; ``tests/community/test_log_privacy.py`` runs uvicorn at
DEBUG and searches its output.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

try:
    import websockets

    _WEBSOCKETS_DIR = str(Path(websockets.__file__).resolve().parent)
except ImportError:  # no websockets library: nothing of it to filter
    _WEBSOCKETS_DIR = None

# uvicorn names a client "host:port" (``uvicorn.protocols.utils.get_client_addr``).
_CLIENT_ADDRESS = re.compile(r"^\[?[0-9A-Fa-f.:]+\]?:\d+$")


@functools.lru_cache(maxsize=256)
def _from_websockets(pathname: str) -> bool:
    return bool(_WEBSOCKETS_DIR) and str(Path(pathname).resolve()).startswith(_WEBSOCKETS_DIR)


class WithoutWireContents(logging.Filter):
    """Drops the websockets library's DEBUG records (frames and headers) and replaces a client
    address among a record's arguments with "client"; everything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and _from_websockets(record.pathname):
            return False
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and _CLIENT_ADDRESS.match(arg) for arg in record.args
        ):
            record.args = tuple(
                "client" if isinstance(arg, str) and _CLIENT_ADDRESS.match(arg) else arg
                for arg in record.args
            )
        return True
