"""Baseline 2: a raw ``websockets`` broadcast server with in-memory rooms, no framework.

Each frame a socket sends goes to every socket in its room (its URL path), itself included.
No authentication, storage or ordering, no compression: the practical limit for Python on this
machine. One process (in-memory rooms cannot span processes), on uvloop as uvicorn runs.

    python -m bench.baselines.raw_websockets --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import defaultdict

from websockets import broadcast
from websockets.asyncio.server import serve

rooms: dict[str, set] = defaultdict(set)


async def handler(websocket) -> None:
    room = rooms[websocket.request.path]
    room.add(websocket)
    try:
        async for message in websocket:
            broadcast(room, message)
    finally:
        room.discard(websocket)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # No permessage-deflate, as the Procfile serves the other two: the best case for Python.
    async with serve(handler, host, port, max_queue=None, compression=None):
        print(f"raw websockets server on {host}:{port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover -- uvicorn[standard] brings it
        asyncio.run(main(args.host, args.port))
    else:
        uvloop.run(main(args.host, args.port))
