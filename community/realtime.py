"""The one broadcast path: services send realtime events only through here.

``send_event_on_commit`` hands an event to the channel layer after the surrounding transaction
commits (Zulip's ``send_event_on_commit``), so nobody hears about a change that was rolled back.
Broadcasts are best effort: PostgreSQL is the truth, and a broadcast lost to a Redis outage or a
full channel costs latency, never data (chat clients resume by ``seq``; consumers catch up from
the database on their own). So a failure to broadcast is logged and swallowed, never raised into
the service that already committed.

Group names:
- ``room_group(group_id)``: every socket in a group's chat room.
- ``user_channel_group(user_id)``: every socket of one member (membership changed, ban, ...).
- ``session_channel_group(session_key)``: every socket of one signed-in session (logout).
- ``notification_channel_group(user_id)``: every notifications socket (``/ws/me/``) of one
  member. Apart from ``user.<id>`` on purpose: the chat consumer joins that group and has no
  handler for notification events (an unknown event type would close its socket).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# A broadcast must not hold up the sender's ack for long while Redis is unreachable.
BROADCAST_TIMEOUT_SECONDS = 2.0

# Event types the chat consumer understands on the user and session groups.
MEMBERSHIP_CHANGED = "membership.changed"
SESSION_ENDED = "session.ended"
# A member changed the topics they want softened: their room sockets re-read them.
BOUNDARIES_CHANGED = "boundaries.changed"
# Someone muted, blocked, unmuted or unblocked someone: the sockets of both re-read whom they
# fold and whose presence they leave out. It carries nothing, so the one blocked learns nothing.
PEOPLE_CHANGED = "people.changed"


def room_group(group_id: int) -> str:
    return f"chat.room.{group_id}"


def user_channel_group(user_id: int) -> str:
    return f"user.{user_id}"


def notification_channel_group(user_id: int) -> str:
    return f"notifications.user.{user_id}"


def session_channel_group(session_key: str) -> str:
    # Session keys are secrets; Redis sees only a digest of them.
    digest = hashlib.sha256(session_key.encode()).hexdigest()[:40]
    return f"session.{digest}"


# Every event names the group it was sent to, under this key: a server process's room sockets
# share one channel for all their groups (``groups.consumers.hub``), which hands each event to
# the sockets of that group.
GROUP_KEY = "to_group"


async def _group_send(group_name: str, event: dict) -> None:
    layer = get_channel_layer()
    await asyncio.wait_for(
        layer.group_send(group_name, {**event, GROUP_KEY: group_name}), BROADCAST_TIMEOUT_SECONDS
    )


def _log_failure(group_name: str, event_type) -> None:
    # Redis down, or a channel over capacity: the resume path recovers. No event content is
    # logged (it may hold a message body).
    logger.warning(
        "Realtime broadcast of %s to %s failed; clients will catch up from the database.",
        event_type,
        group_name,
        exc_info=True,
    )


def _outer_loop() -> asyncio.AbstractEventLoop | None:
    """The server's event loop when this thread runs work for it (asgiref's ``sync_to_async``
    and Channels' ``database_sync_to_async`` record it for the thread), else None (a Celery
    task, a management command, a test's plain thread)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop


async def _send_and_log(group_name: str, event: dict) -> None:
    try:
        await _group_send(group_name, event)
    except Exception:
        _log_failure(group_name, event.get("type"))


# Broadcasts handed to the loop and not finished yet: the loop keeps only weak references to
# its tasks, and one collected mid-flight would vanish without a word.
_in_flight: set[asyncio.Task] = set()


def _start_broadcast(loop: asyncio.AbstractEventLoop, group_name: str, event: dict) -> None:
    task = loop.create_task(_send_and_log(group_name, event))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


def send_event_now(group_name: str, event: dict, *, wait: bool = True) -> None:
    """Broadcast at once from synchronous code; a failure is logged, not raised.

    ``wait=False``, in a thread that works for the server's event loop (a service run by a
    socket through ``database_sync_to_async``): the broadcast is handed to that loop and this
    returns at once. For the chat's own broadcasts (messages and changes), which the process's
    one database thread would otherwise wait for while other rooms' sends queue behind it
    (bench/, docs/performance.md); sockets put those in ``seq``/``rev`` order themselves, and
    the sender's ack never depends on them. Everywhere else, and by default, it returns once
    the event is with the channel layer, so a socket that hears from the caller afterwards
    (a round trip) has heard the event first.

    Precondition: called from a thread without a running event loop.
    """
    loop = None if wait else _outer_loop()
    if loop is not None:
        loop.call_soon_threadsafe(_start_broadcast, loop, group_name, event)
        return
    try:
        async_to_sync(_group_send)(group_name, event)
    except Exception:
        _log_failure(group_name, event.get("type"))


def send_events_now(events: list[tuple[str, dict]]) -> None:
    """Send many ``(group name, event)`` pairs at once from synchronous code, in order, on one
    event loop and Redis connection (a Celery task notifying many members).

    ``send_event_now`` from a worker starts a loop (and a Redis connection) per event, about
    3 ms each: most of a 10,000-reminder minute (bench/reminders.py). Best effort like every
    broadcast: after a first failure (Redis away) the rest are not tried, as each would wait
    out the timeout too; pages show what changed when loaded.

    Precondition: called from a thread without a running event loop.
    """

    async def send_all() -> None:
        for position, (group_name, event) in enumerate(events):
            try:
                await _group_send(group_name, event)
            except Exception:
                # No event content is logged (it may hold a title or a message).
                logger.warning(
                    "Realtime broadcast of %s to %s failed, %d more not tried; pages catch up "
                    "from the database.",
                    event.get("type"),
                    group_name,
                    len(events) - position - 1,
                    exc_info=True,
                )
                return

    try:
        async_to_sync(send_all)()
    except Exception:
        # No loop to be had here (say, called from a thread running one): what changed is
        # stored; pages show it when loaded.
        logger.warning("Could not send %d realtime events.", len(events), exc_info=True)


def send_event_on_commit(group_name: str, event: dict, *, wait: bool = True) -> None:
    """Broadcast ``event`` to ``group_name`` once the current transaction commits
    (``send_event_now``, with its ``wait``).

    Outside a transaction it is sent at once. ``event["type"]`` names the consumer handler
    (``chat.message`` calls ``chat_message``).
    """
    transaction.on_commit(lambda: send_event_now(group_name, event, wait=wait))
