"""Presence in a group's room: who is here now.

Presence lives in Redis only (who is here now is not a fact worth keeping): one hash per room,
one field per socket, refreshed by each socket and read with a staleness cut-off, so a Redis
restart or a crashed server process heals by itself.
"""

from __future__ import annotations

import json
import logging
import time

import redis
from django.conf import settings
from django.utils.translation import gettext as _

from community.errors import DomainError
from community.realtime import room_group, send_event_now
from groups.models import Group, Membership
from groups.services.chat import _membership

__all__ = [
    "announce_presence",
    "enter_room",
    "leave_room",
    "presence_snapshot",
    "refresh_presence",
    "refresh_presences",
    "set_away",
    "set_presence_hidden",
]

logger = logging.getLogger(__name__)

PRESENCE_STALE_SECONDS = 45
PRESENCE_KEY_TTL_SECONDS = 120

# --- Presence ---------------------------------------------------------------------------------

_redis_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.CACHE_URL
    if url not in _redis_clients:
        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def _presence_key(group_id: int) -> str:
    return f"chat:presence:{group_id}"


def presence_snapshot(group_id: int) -> list[dict]:
    """Who is in the room now: ``{"name", "listening", "away"}``, hidden members left out.

    ``away`` ("taking a break") is true when any of the member's sockets stepped away; no
    reason is kept or shown. Visible only to members: it travels on the room's channel group
    and nowhere else.
    """
    return [{k: v for k, v in p.items() if k != "user_id"} for p in _presence_entries(group_id)]


def _presence_entries(group_id: int) -> list[dict]:
    """``presence_snapshot`` with each person's ``user_id`` too: what the room's channel group
    carries, so each socket can leave out whoever blocked its member
    (``groups.consumers.ChatConsumer.chat_presence``). The ids never reach a browser."""
    entries = _redis().hgetall(_presence_key(group_id))
    fresh_after = time.time() - PRESENCE_STALE_SECONDS
    people: dict[int, dict] = {}
    for raw in entries.values():
        entry = json.loads(raw)
        if entry["t"] < fresh_after:
            continue
        person = people.setdefault(
            entry["u"],
            {"name": entry["n"], "listening": entry["l"], "hidden": False, "away": False},
        )
        person["hidden"] = person["hidden"] or entry["h"]
        person["away"] = person["away"] or bool(entry.get("a"))
    return sorted(
        (
            {"name": p["name"], "listening": p["listening"], "away": p["away"], "user_id": uid}
            for uid, p in people.items()
            if not p["hidden"]
        ),
        key=lambda p: p["name"].casefold(),
    )


def present_user_ids(group_id: int) -> set[int]:
    """User ids with a fresh socket in the room who show their presence (for rounds).

    The same freshness and hiding rules as ``presence_snapshot``. Raises ``redis.RedisError`` /
    ``OSError`` when Redis is unreachable: the caller decides what that means.
    """
    entries = _redis().hgetall(_presence_key(group_id))
    fresh_after = time.time() - PRESENCE_STALE_SECONDS
    seen: set[int] = set()
    hidden: set[int] = set()
    for raw in entries.values():
        entry = json.loads(raw)
        if entry["t"] < fresh_after:
            continue
        seen.add(entry["u"])
        if entry["h"]:
            hidden.add(entry["u"])
    return seen - hidden


def _write_presence(membership: Membership, connection_id: str, *, away: bool = False) -> None:
    _write_presences([(membership, connection_id, away)])


def _write_presences(sockets) -> None:
    """One Redis round trip for any number of ``(membership, connection id, away)``."""
    now = time.time()
    pipe = _redis().pipeline(transaction=False)
    for membership, connection_id, away in sockets:
        entry = {
            "u": membership.user_id,
            "n": membership.user.display_name,
            "l": membership.listening,
            "h": membership.hide_presence,
            "a": away,
            "t": now,
        }
        key = _presence_key(membership.group_id)
        pipe.hset(key, connection_id, json.dumps(entry))
        pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
    pipe.execute()


def _announce_presence(group_id: int) -> None:
    send_event_now(
        room_group(group_id), {"type": "chat.presence", "present": _presence_entries(group_id)}
    )


def enter_room(membership: Membership, *, connection_id: str, announce: bool = True) -> None:
    """Mark one socket as present and tell the room (unless ``announce`` is False: the caller
    calls ``announce_presence`` itself, once for many sockets). Best effort: Redis down only
    logs."""
    try:
        _write_presence(membership, connection_id)
        if announce:
            _announce_presence(membership.group_id)
    except (redis.RedisError, OSError):
        logger.warning("Presence unavailable for group %s.", membership.group_id)


def announce_presence(group_id: int) -> None:
    """Tell the room who is here now. Best effort: Redis down only logs."""
    try:
        _announce_presence(group_id)
    except (redis.RedisError, OSError):
        logger.warning("Presence unavailable for group %s.", group_id)


def refresh_presence(
    membership: Membership, *, connection_id: str, announce: bool, away: bool = False
) -> None:
    """Keep one socket's presence fresh (after a Redis restart this writes it back).

    ``away``: the socket's own step-away state (the consumer remembers it), written back too.
    """
    try:
        _write_presence(membership, connection_id, away=away)
        if announce:
            _announce_presence(membership.group_id)
    except (redis.RedisError, OSError):
        logger.warning("Presence unavailable for group %s.", membership.group_id)


def refresh_presences(sockets) -> None:
    """Keep many sockets' presence fresh at once, without announcing: ``(membership,
    connection id, away)`` each (a server process's periodic refresh of all its room sockets).
    Best effort, like all presence."""
    try:
        _write_presences(sockets)
    except (redis.RedisError, OSError):
        logger.warning("Presence unavailable for %s sockets.", len(sockets))


def set_away(membership: Membership, *, connection_id: str, away: bool) -> None:
    """Step away from the room ("taking a break") or come back, for one socket, and tell the
    room. No reason is asked or kept. Best effort, like all presence.

    Precondition: ``membership`` is the socket's own, authorised when it connected.
    """
    if not isinstance(away, bool):
        raise DomainError(
            _("Say whether you're stepping away (true) or back (false)."), code="bad_frame"
        )
    refresh_presence(membership, connection_id=connection_id, announce=True, away=away)


def leave_room(group_id: int, *, connection_id: str, announce: bool = True) -> None:
    """One socket left the room; tell the room unless ``announce`` is False (as above)."""
    try:
        _redis().hdel(_presence_key(group_id), connection_id)
        if announce:
            _announce_presence(group_id)
    except (redis.RedisError, OSError):
        logger.warning("Presence unavailable for group %s.", group_id)


def set_presence_hidden(group: Group, *, user, hidden: bool) -> Membership:
    """Choose whether others in the room see that this member is here."""
    membership = _membership(group, user)
    Membership.objects.filter(pk=membership.pk).update(hide_presence=bool(hidden))
    membership.hide_presence = bool(hidden)
    return membership
