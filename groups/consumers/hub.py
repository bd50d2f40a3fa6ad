"""One channel per server process for every room socket's broadcasts (``RoomHub``).

A room's broadcasts (new messages, changes, presence, rounds) go to its channel group, and what
concerns one member or one signed-in session to theirs. If every socket joined those groups
itself, the channel layer would queue, decode and dispatch each room broadcast once per socket,
each through a task of its own: for a room of twelve, twelve times the work of the one useful
step, sending the frame (bench/, docs/performance.md). Instead the process's hub joins each
group once, for all its sockets there, decodes each event once and hands it to those sockets.

Order: each socket handles its events one at a time, in the order the hub received them, as
Channels' own dispatch does (a mute, say, is applied before the message that follows it). A
socket with nothing in hand takes a room event at once, without a task; anything else (an event
that reads the database, or any event while the socket is busy with a frame, a catch-up or an
earlier event) goes into the socket's mailbox: a task that starts when the one before it ends.
So a slow socket never holds up the others.

``community.realtime`` names the group an event was sent to (``realtime.GROUP_KEY``): that is
how the hub knows which sockets it is for.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name

from community.realtime import GROUP_KEY
from groups import services
from groups.consumers.common import PerLoop

if TYPE_CHECKING:
    from groups.consumers.chat import ChatConsumer
    from groups.models import Group

logger = logging.getLogger(__name__)

# Handlers that only send (no database, no waiting): a socket with nothing in hand runs them
# at once. The others (re-reading mutes, boundaries or access, closing) go through its mailbox.
SENDING_ONLY = frozenset({"chat_message", "chat_update", "chat_presence", "round_state"})
# Sockets coming and going within this long of each other are announced to their room in one
# presence broadcast: after a server restart hundreds reconnect at once, and each arrival
# would otherwise send the whole room's presence to everyone in it.
PRESENCE_SETTLE_SECONDS = 0.2
# After an error from the channel layer (Redis unreachable with the core layer), wait this long
# before receiving again; the sockets' periodic check catches up meanwhile.
RETRY_SECONDS = 1.0


class RoomHub(PerLoop):
    """The channel groups this server process's room sockets listen on (one hub per loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer) -> None:
        super().__init__(loop)
        self.layer = layer
        self.groups: dict[str, set[ChatConsumer]] = {}
        self.channel: str | None = None
        self.task: asyncio.Task | None = None
        self._starting = asyncio.Lock()
        self._presence_due: set[int] = set()
        self._announcing: set[asyncio.Task] = set()
        # Group id -> the one instance of that group this process's sockets there share.
        self._rooms: weakref.WeakValueDictionary[int, Group] = weakref.WeakValueDictionary()

    def fits(self, loop: asyncio.AbstractEventLoop, layer) -> bool:
        # A test may swap the channel layer; the hub listens on the one sockets send with.
        return self.loop is loop and self.layer is layer

    def room(self, group: Group) -> Group:
        """The process's one instance of ``group``, for all its sockets in that room, updated
        with the values in ``group`` (just read at a socket's handshake, so the newest). Each
        socket used to keep its own copy of the group's row and texts (bench/ scenario (c))."""
        shared = self._rooms.get(group.pk)
        if shared is None:
            self._rooms[group.pk] = group
            return group
        shared.__dict__.update({k: v for k, v in group.__dict__.items() if k != "_state"})
        return shared

    async def join(self, socket: ChatConsumer, names: list[str]) -> None:
        """Deliver the events of the groups ``names`` to ``socket`` from now on. A failure to
        join (Redis down) is logged; ``refresh`` tries again and the socket's periodic check
        catches up meanwhile."""
        new = []
        for name in names:
            sockets = self.groups.setdefault(name, set())
            if not sockets:
                new.append(name)
            sockets.add(socket)
        if not await self._start():
            return
        for name in new:
            await self._group_add(name)

    async def leave(self, socket: ChatConsumer, names: list[str]) -> None:
        for name in names:
            sockets = self.groups.get(name)
            if sockets is None:
                continue
            sockets.discard(socket)
            if sockets:
                continue
            del self.groups[name]
            if self.channel is not None:
                try:
                    await self.layer.group_discard(name, self.channel)
                except Exception:
                    logger.warning("Could not leave a channel group (Redis down?).")
        if not self.groups and self.task is not None:
            self.task.cancel()
            self.task, self.channel = None, None

    async def refresh(self) -> None:
        """Join every group again: the core layer forgets its groups when Redis restarts,
        and a join may have failed while Redis was down."""
        if await self._start():
            for name in list(self.groups):
                await self._group_add(name)

    async def _start(self) -> bool:
        async with self._starting:  # two sockets connecting at once: one channel
            if self.task is not None:
                return True
            try:
                channel = await self.layer.new_channel("hub.")
            except Exception:
                logger.warning("Could not open the room hub's channel (Redis down?).")
                return False
            self.channel = channel
            self.task = self.loop.create_task(self._receive(channel))
            return True

    async def _group_add(self, name: str) -> None:
        try:
            await self.layer.group_add(name, self.channel)
        except Exception:
            logger.warning("Could not join a channel group (Redis down?).")

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("The room hub's channel is unavailable; retrying.")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await self.deliver(event)

    async def deliver(self, event: dict) -> None:
        """Hand ``event`` to each socket of the group it was sent to, in turn."""
        sockets = self.groups.get(event.get(GROUP_KEY), ())
        name = get_handler_name(event)
        for socket in list(sockets):
            if socket.closing:
                continue
            handler = getattr(socket, name, None)
            if handler is None:
                # Never sent to a browser; a bug in whoever sent it, so say so.
                logger.error("Room socket has no handler for %s.", event.get("type"))
                return
            if name in SENDING_ONLY and socket.mailbox is None and not socket.busy():
                try:
                    await handler(event)
                except Exception:
                    # The handlers deal with their own failures; this is a bug's safety net,
                    # so that one socket's error never stops the others' delivery.
                    logger.exception("Delivering a room event failed.")
                continue
            socket.post(handler, event)

    def announce_presence_soon(self, group_id: int) -> None:
        """Tell the room who is here in ``PRESENCE_SETTLE_SECONDS``, once for every arrival
        and departure in this process until then (``services.announce_presence``)."""
        if group_id in self._presence_due:
            return
        self._presence_due.add(group_id)
        self.loop.call_later(PRESENCE_SETTLE_SECONDS, self._announce, group_id)

    def _announce(self, group_id: int) -> None:
        self._presence_due.discard(group_id)
        task = self.loop.create_task(
            sync_to_async(services.announce_presence, thread_sensitive=False)(group_id)
        )
        self._announcing.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._announcing.discard)
