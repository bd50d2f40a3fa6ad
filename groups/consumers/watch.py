"""The periodic check of a server process's room sockets (``RoomWatch``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from groups import selectors, services
from groups.consumers.common import PerLoop, _db
from moderation.matcher import get_matcher

if TYPE_CHECKING:
    from groups.consumers.chat import ChatConsumer

logger = logging.getLogger(__name__)

TICK_SECONDS = 2.0
# Every this many checks of a socket: re-read its mutes and blocks (the backstop for a lost
# ``people.changed``), refresh its presence and re-join its channel groups. The pub/sub layer
# resubscribes by itself after a Redis restart; this covers a join that failed while Redis was
# down (and the core layer, which forgets group memberships on a restart).
REFRESH_EVERY_TICKS = 5


class RoomWatch(PerLoop):
    """The periodic check of every room socket in this server process (one per event loop).

    Each socket is checked every ``TICK_SECONDS``: the sockets are split into ``SLICES`` and
    one slice is checked every ``TICK_SECONDS / SLICES``, so the check's work comes in small
    pieces rather than one burst that holds up every room's messages. A slice's check is one
    batched ``check_room_accesses``, each socket applies its answer (close, catch up, adopt
    changes); every ``REFRESH_EVERY_TICKS`` rounds a slice also re-reads mutes and blocks
    (their changes arrive as ``people.changed`` at once; this is the backstop), refreshes its
    presence entries in one Redis round trip, and re-joins its channel groups. The task ends
    when the last socket leaves.
    """

    SLICES = 4

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.sockets: set[ChatConsumer] = set()
        self.task: asyncio.Task | None = None
        self.ticks = 0
        self._added = 0

    def add(self, socket: ChatConsumer) -> None:
        # Round robin over the slices, so each slice holds about a quarter of the sockets.
        socket.watch_slice = self._added % self.SLICES
        self._added += 1
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())
        if not RoomWatch.warmed:
            # Moderation's compiled rules, before this process's first message needs them.
            RoomWatch.warmed = True
            self.loop.create_task(self._warm_up())

    warmed = False

    @staticmethod
    async def _warm_up() -> None:
        try:
            await _db(get_matcher)()
        except Exception:
            logger.debug("Matcher warm-up skipped; it is built on first use.", exc_info=True)

    def discard(self, socket: ChatConsumer) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        try:
            while self.sockets:
                await asyncio.sleep(TICK_SECONDS / self.SLICES)
                self.ticks += 1
                piece = self.ticks % self.SLICES
                rounds = self.ticks // self.SLICES
                try:
                    await self.tick(
                        piece=piece, refresh=rounds % REFRESH_EVERY_TICKS == REFRESH_EVERY_TICKS - 1
                    )
                except Exception:
                    # The database or Redis hiccuped; the next tick tries again.
                    logger.warning("Chat socket check failed; retrying.", exc_info=True)
        finally:
            if not self.sockets:
                self.forget()

    async def tick(self, *, piece: int | None = None, refresh: bool) -> None:
        """Check the sockets of slice ``piece`` (all of them when None); with ``refresh``, also
        re-read their mutes and blocks and refresh their presence and channel groups."""
        sockets = [
            s for s in self.sockets if not s.closing and (piece is None or s.watch_slice == piece)
        ]
        if not sockets:
            return
        keys = [(s.membership.pk, s.session_key) for s in sockets]
        # In a thread of its own, not the database thread: a check of a few hundred sockets
        # takes milliseconds, and the room's sends must not queue behind it.
        checks = await database_sync_to_async(
            selectors.check_room_accesses, thread_sensitive=False
        )(keys, people=refresh)
        await asyncio.gather(
            *(s._on_check(checks[key]) for s, key in zip(sockets, keys, strict=True)),
            return_exceptions=True,
        )
        if refresh:
            alive = [s for s in sockets if not s.closing]
            for hub in {s.hub for s in alive if s.hub is not None}:
                await hub.refresh()
            await sync_to_async(services.refresh_presences, thread_sensitive=False)(
                [(s.membership, s.connection_id, s.away) for s in alive]
            )
