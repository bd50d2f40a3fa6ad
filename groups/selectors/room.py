"""The room page's first screen for one member, in two queries.

The page needs the room's position, the newest page of messages (authors, check-in cards,
reactions) and, to show them to this reader, their content boundaries and whom they muted or
blocked. Read one by one through the ORM (``latest_position``, ``messages_before``,
``content_boundaries``, ``mutes_and_blockers``) that was seven queries and model instances for
every message and author, about half of the page's server time; here it is one statement for
all but the reactions, and one for those, in SQL (the ORM's building of these queries alone
cost more than running them), read into plain rows.

The rules stay where they are: ``_payload`` makes each message's payload and ``frame_for_viewer``
each reader's frame, exactly as for the socket (``tests/groups/test_room_page.py`` holds this
to the ORM path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection

from community.models import Block, Mute, User
from groups.models import CheckIn, Message, MessageKind, MessageReaction, RoomPreference
from groups.selectors.boundaries import known_topics
from groups.selectors.chat import (
    HISTORY_PAGE_SIZE,
    RoomPosition,
    _payload,
    _position,
    check_in_card,
    frame_for_viewer,
)

__all__ = ["RoomPage", "room_page"]


@dataclass(frozen=True)
class RoomPage:
    """The room's ``position`` (read in the same statement as the messages, so everything up to
    it is on the page or older), the newest messages as ``frames`` for this reader, oldest
    first, and whether older ones remain (``has_more``)."""

    position: RoomPosition
    frames: list[dict]
    has_more: bool


# The message columns read, in order: what ``_payload`` reads of a message.
_FIELDS = (
    "id",
    "seq",
    "client_id",
    "kind",
    "author_id",
    "body",
    "content_warning",
    "topics",
    "created_at",
    "edited_at",
    "deleted_at",
    "hidden_at",
    "held_at",
    "rev",
)


class _Author:
    __slots__ = ("display_name",)

    def __init__(self, display_name: str):
        self.display_name = display_name


class _Row:
    """One message as ``_payload`` reads a ``Message``: the same attributes, from one row."""

    __slots__ = ("pk", *_FIELDS[1:], "author")
    is_visible = Message.is_visible  # the model's own rule

    def __init__(self, values, author_name: str | None):
        (
            self.pk,
            self.seq,
            self.client_id,
            self.kind,
            self.author_id,
            self.body,
            self.content_warning,
            self.topics,
            self.created_at,
            self.edited_at,
            self.deleted_at,
            self.hidden_at,
            self.held_at,
            self.rev,
        ) = values
        # No author: its author erased their account (``_payload`` says "Former member").
        self.author = _Author(author_name) if self.author_id is not None else None


@functools.cache
def _page_sql() -> str:
    qn = connection.ops.quote_name
    messages, users, check_ins, mutes, blocks, preferences = (
        qn(model._meta.db_table) for model in (Message, User, CheckIn, Mute, Block, RoomPreference)
    )
    columns = ", ".join(f"m.{qn(Message._meta.get_field(name).column)}" for name in _FIELDS)
    return (
        f"SELECT {columns}, u.display_name, c.presence, c.feelings, "  # noqa: S608 -- only the models' table names; values are parameters
        # Whether the reader muted or blocked the author (a block includes a mute).
        f"(EXISTS (SELECT 1 FROM {mutes} WHERE user_id = %s AND muted_id = m.author_id)"
        f" OR EXISTS (SELECT 1 FROM {blocks} WHERE user_id = %s AND blocked_id = m.author_id)),"
        # The room's position and the reader's boundaries: the same in every row.
        f" (SELECT seq FROM {messages} WHERE group_id = %s ORDER BY seq DESC LIMIT 1),"
        f" (SELECT rev FROM {messages} WHERE group_id = %s ORDER BY rev DESC LIMIT 1),"
        f" (SELECT soften_topics FROM {preferences} WHERE user_id = %s) "
        f"FROM {messages} m LEFT JOIN {users} u ON u.id = m.author_id"
        f" LEFT JOIN {check_ins} c ON c.message_id = m.id "
        f"WHERE m.group_id = %s AND m.created_at >= %s ORDER BY m.seq DESC LIMIT %s"
    )


def _converter(model, name: str):
    """What turns the database's value of ``model.name`` into the ORM's (SQLite hands back
    times and UUIDs as text, both hand back JSON as text), or None when nothing does."""
    field = model._meta.get_field(name)
    column = field.get_col(model._meta.db_table)
    steps = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
    if not steps:
        return None

    def convert(value):
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert


def _reactors(message_ids: list[int]) -> dict[int, dict[str, list[int]]]:
    """Message id → reaction → who gave it, oldest first (as ``message_payloads`` reads them)."""
    if not message_ids:
        return {}
    table = connection.ops.quote_name(MessageReaction._meta.db_table)
    marks = ", ".join(["%s"] * len(message_ids))
    found: dict[int, dict[str, list[int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT message_id, reaction, user_id FROM {table} "  # noqa: S608 -- a table name and placeholders
            f"WHERE message_id IN ({marks}) ORDER BY created_at",
            message_ids,
        )
        for message_id, reaction, user_id in cursor.fetchall():
            found.setdefault(message_id, {}).setdefault(reaction, []).append(user_id)
    return found


def room_page(membership, viewer, *, limit: int = HISTORY_PAGE_SIZE) -> RoomPage:
    """The room page of ``membership``'s room for ``viewer``, its member: the same position,
    frames and ``has_more`` as ``latest_position``, ``messages_before`` and ``frame_for_viewer``
    (with the reader's ``content_boundaries`` and muted ids) give together.

    Precondition: ``membership`` is ``viewer``'s, authorised for this request
    (``access_room`` or the pair and practice rooms' own checks).
    """
    group_id = membership.group_id
    joined = Message._meta.get_field("created_at").get_db_prep_value(
        membership.joined_at, connection
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _page_sql(),
            [viewer.pk, viewer.pk, group_id, group_id, viewer.pk, group_id, joined, limit + 1],
        )
        rows = cursor.fetchall()
    if not rows:  # nothing to show this member (yet): the position on its own
        return RoomPage(position=_position(group_id), frames=[], has_more=False)

    # Each row: the message's columns (``_FIELDS``), its author's name, its check-in card's
    # presence and feelings, whether the reader muted its author; then, the same in every row,
    # the room's latest seq and rev and the reader's boundaries.
    width = len(_FIELDS)
    steps = [(i, step) for i, name in enumerate(_FIELDS) if (step := _converter(Message, name))]
    feelings_from_db = _converter(CheckIn, "feelings")
    latest_seq, latest_rev, soften = rows[0][width + 4 :]
    soften = known_topics(_converter(RoomPreference, "soften_topics")(soften))
    has_more = len(rows) > limit

    messages, cards, muted = [], [], set()
    for row in reversed(rows[:limit]):  # oldest first
        values = list(row[:width])
        for i, step in steps:
            values[i] = step(values[i])
        author_name, presence, feelings, author_muted = row[width : width + 4]
        message = _Row(values, author_name)
        messages.append(message)
        has_card = presence is not None
        cards.append(check_in_card(presence, feelings_from_db(feelings)) if has_card else None)
        if author_muted:
            muted.add(message.author_id)

    reactors = _reactors([m.pk for m in messages if m.is_visible])
    muted = frozenset(muted)
    frames = []
    for message, card in zip(messages, cards, strict=True):
        payload = _payload(message, reactors.get(message.pk, {}))
        if message.kind == MessageKind.CHECK_IN and message.is_visible:
            payload["check_in"] = card  # None: its check-in is gone (as message_payloads)
        # Only the boundaries the message touches change its frame: none, none to look up.
        touched = soften if soften and not soften.isdisjoint(payload["topics"]) else frozenset()
        frames.append(frame_for_viewer(payload, viewer_id=viewer.pk, soften=touched, muted=muted))
    return RoomPage(
        position=RoomPosition(seq=latest_seq or 0, rev=latest_rev or 0),
        frames=frames,
        has_more=has_more,
    )
