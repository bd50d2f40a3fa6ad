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

from asgiref.sync import async_to_sync
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


async def _group_send(group_name: str, event: dict) -> None:
    layer = get_channel_layer()
    await asyncio.wait_for(layer.group_send(group_name, event), BROADCAST_TIMEOUT_SECONDS)


def send_event_now(group_name: str, event: dict) -> None:
    """Broadcast at once from synchronous code; a failure is logged, not raised.

    Precondition: called from a thread without a running event loop (a sync view, a service
    run through ``database_sync_to_async``, a Celery task).
    """
    try:
        async_to_sync(_group_send)(group_name, event)
    except Exception:
        # Redis down, or a channel over capacity: the resume path recovers. No event content is
        # logged (it may hold a message body).
        logger.warning(
            "Realtime broadcast of %s to %s failed; clients will catch up from the database.",
            event.get("type"),
            group_name,
            exc_info=True,
        )


def send_event_on_commit(group_name: str, event: dict) -> None:
    """Broadcast ``event`` to ``group_name`` once the current transaction commits.

    Outside a transaction it is sent at once. ``event["type"]`` names the consumer handler
    (``chat.message`` calls ``chat_message``).
    """
    transaction.on_commit(lambda: send_event_now(group_name, event))
