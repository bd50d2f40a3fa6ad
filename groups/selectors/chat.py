"""Reads for a group's chat room: backlog after a ``seq``, changes after a ``rev``, older pages,
unread counts, and the consumer's periodic re-check of a socket's right to stay.

Who may see what: only active members read a room, and a member sees the messages posted since
they (last) joined. What was shared before someone arrived stays with the people who were there.
Deleted and hidden messages keep their ``seq`` (no gaps) but are shown without their words.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from community.errors import PermissionDenied
from community.models import User
from community.selectors import mutes_and_blockers_of
from groups.models import (
    CheckIn,
    Feeling,
    Group,
    Membership,
    MembershipStatus,
    Message,
    MessageKind,
    MessageReaction,
    Presence,
    ReactionKind,
    RoomPreference,
    Round,
)
from groups.selectors.boundaries import known_topics
from groups.selectors.membership import access_group_as_member
from groups.topics import note_topics, topic_choices

__all__ = [
    "HISTORY_PAGE_SIZE",
    "RESUME_BATCH_SIZE",
    "RoomCheck",
    "RoomPosition",
    "access_room",
    "access_room_membership",
    "check_room_access",
    "check_room_accesses",
    "frame_for_viewer",
    "frame_variant",
    "latest_position",
    "latest_seq",
    "message_payloads",
    "messages_after",
    "messages_before",
    "room_backlog",
    "room_catch_up",
    "room_changes",
    "room_position",
    "unread_counts",
]

RESUME_BATCH_SIZE = 200
HISTORY_PAGE_SIZE = 50


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def message_payloads(messages: list[Message], *, new: bool = False) -> list[dict]:
    """Broadcast-ready dicts for ``messages`` (authors selected), with their reactions.

    ``author_id`` and ``reactors`` are for the consumer only: ``frame_for_viewer`` turns them
    into ``own`` and ``my_reactions`` for each reader and never passes ids on.

    ``new``: the messages were stored in the caller's transaction, under the room's lock, so
    nobody can have reacted to them yet (saves the reactions query on every send).
    """
    reactors: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    visible_ids = [m.pk for m in messages if m.is_visible]
    if visible_ids and not new:
        rows = MessageReaction.objects.filter(message_id__in=visible_ids).order_by("created_at")
        for message_id, reaction, user_id in rows.values_list("message_id", "reaction", "user_id"):
            reactors[message_id][reaction].append(user_id)
    check_ins = _check_in_cards([m for m in messages if m.kind == MessageKind.CHECK_IN])
    payloads = [_payload(m, reactors.get(m.pk, {})) for m in messages]
    for message, payload in zip(messages, payloads, strict=True):
        if message.kind == MessageKind.CHECK_IN and message.is_visible:
            payload["check_in"] = check_ins.get(message.pk)  # None: its check-in is gone
    return payloads


def _check_in_cards(messages: list[Message]) -> dict[int, dict]:
    """Message id → what a check-in card shows, for all of ``messages`` in one query.

    The note is the message's body (so moderation and deletion treat it like any words).
    """
    ids = [m.pk for m in messages if m.is_visible]
    if not ids:
        return {}
    rows = CheckIn.objects.filter(message_id__in=ids).values_list(
        "message_id", "presence", "feelings"
    )
    return {
        message_id: check_in_card(presence, feelings) for message_id, presence, feelings in rows
    }


def check_in_card(presence: int, feelings: list[str]) -> dict:
    """What a check-in card shows of its check-in (``presence`` and ``feelings`` as stored)."""
    return {
        "presence": presence,
        "presence_label": str(Presence(presence).label),
        "feelings": [str(Feeling(f).label) for f in feelings if f in Feeling.values],
    }


def _author_name(message: Message) -> str:
    if message.kind == MessageKind.COMPANION:  # a practice room's companion: a program
        return _("Companion (a program)")
    # No author: its author erased their account (the words stay if they chose so).
    return message.author.display_name if message.author else _("Former member")


def _payload(message: Message, reactors: dict[str, list[int]]) -> dict:
    visible = message.is_visible
    held = visible and message.held_at is not None
    return {
        "seq": message.seq,
        "client_id": str(message.client_id),
        "kind": message.kind,
        "author_id": message.author_id,
        "author": {"name": _author_name(message)},
        "body": message.body if visible else "",
        "content_warning": message.content_warning if visible else "",
        "topics": list(message.topics) if visible else [],
        # Whether the content note names a known topic: then it folds only for readers who
        # soften that topic; a note naming none folds for everyone, as its sender asked.
        "note_named": bool(visible and message.content_warning)
        and bool(note_topics(message.content_warning)),
        "created": _iso(message.created_at),
        "edited": _iso(message.edited_at) if visible else None,
        "deleted": message.deleted_at is not None,
        "hidden": message.hidden_at is not None and message.deleted_at is None,
        "held": held,
        "rev": message.rev,
        "reactors": {k: list(v) for k, v in reactors.items()} if visible else {},
    }


# In their order of display. ``ReactionKind.values`` builds its list anew on every use, and
# every frame of every reader goes through here.
_REACTION_KINDS = tuple(ReactionKind.values)


def frame_for_viewer(
    payload: dict,
    *,
    viewer_id: int,
    frame_type: str = "message",
    soften=frozenset(),
    muted=frozenset(),
) -> dict:
    """The frame one reader receives: reaction counts, their own reactions, no user ids.

    ``muted``: the ids of the people this reader muted or blocked (``muted_ids``). A message by
    one of them carries ``"muted_author": true`` (and the key is absent otherwise, so nobody
    else's frames ever mention muting): the reader sees it folded as "a message from someone
    you muted". Never set on a held placeholder, which names no author.

    ``soften``: the reader's content boundaries (``content_boundaries``). ``softened`` names the
    message's topics among them (``[{"value", "label", "phrase"}]``), so the message arrives
    folded for this reader only; always empty for the reader's own messages. ``folded`` says
    whether this reader sees the message folded: a softened topic, or a content note that names
    no known topic (a note naming a topic folds only for readers who soften that topic; others
    see the note as a label above the words).
    """
    frame = {k: v for k, v in payload.items() if k not in ("author_id", "reactors")}
    frame["type"] = frame_type
    mine = payload.get("author_id") == viewer_id
    frame["softened"] = (
        topic_choices(set(payload.get("topics") or ()) & soften) if soften and not mine else []
    )
    frame["folded"] = bool(frame["softened"]) or (
        bool(payload.get("content_warning")) and not payload.get("note_named")
    )
    if payload.get("held") and payload.get("author_id") != viewer_id:
        # Held for a moderator: only its author sees it. Others get a placeholder with no
        # words and no author, so ``seq`` stays gap-free; it becomes an ``update`` once approved.
        frame.update(
            body="",
            content_warning="",
            topics=[],
            softened=[],
            folded=False,
            note_named=False,
            author={"name": ""},
            edited=None,
        )
        frame.pop("check_in", None)
        payload = {**payload, "reactors": {}}
    elif muted and not mine and payload.get("author_id") in muted:
        frame["muted_author"] = True
    if "author_id" in payload:
        frame["own"] = payload["author_id"] == viewer_id
    if "reactors" in payload:
        reactors = payload["reactors"]
        frame["reactions"] = {
            kind: len(reactors[kind]) for kind in _REACTION_KINDS if reactors.get(kind)
        }
        frame["my_reactions"] = [
            kind for kind in _REACTION_KINDS if viewer_id in reactors.get(kind, ())
        ]
    return frame


def frame_variant(payload: dict, *, viewer_id: int, soften=frozenset(), muted=frozenset()):
    """What of the reader ``frame_for_viewer`` reads, as a key: two readers with the same key
    get the same frame from the same payload (``tests/groups/test_frame_variants.py`` holds
    them to it). The room's sockets encode a broadcast once per key, not once per reader:
    in a room of twelve, usually two frames (the author's and everyone else's).

    Keep it in step with ``frame_for_viewer``: every input that depends on the reader is here.
    """
    author = payload.get("author_id")
    reactors = payload.get("reactors")
    mine = author == viewer_id
    return (
        mine,
        frozenset(payload.get("topics") or ()) & soften if soften and not mine else None,
        bool(muted) and not mine and author in muted,
        tuple(k for k in _REACTION_KINDS if viewer_id in reactors.get(k, ())) if reactors else (),
    )


def access_room_membership(membership_id: int) -> Membership:
    """The socket's membership, re-read now; refused unless it is still active.

    Every frame that reads or writes the room goes through here or through a service that makes
    the same check, so a removal takes effect on the very next frame.
    """
    membership = (
        Membership.objects.select_related("group", "user")
        .filter(pk=membership_id, status=MembershipStatus.ACTIVE, user__is_active=True)
        .first()
    )
    if membership is None:
        raise PermissionDenied(_("This space is for the group's members."), code="not_member")
    return membership


def access_room(slug: str, user) -> Membership:
    """The caller's active membership of the room's group, with group and user loaded, or a
    kind refusal (NotFound, PermissionDenied ``not_member``).

    ``user`` is the caller as just loaded (the socket's handshake), so its own ``is_active``
    is current: no third query re-reads membership, group and user together.
    """
    group, membership = access_group_as_member(slug, user)
    if not user.is_active:
        raise PermissionDenied(_("This space is for the group's members."), code="not_member")
    membership.group, membership.user = group, user
    return membership


def _visible_to(membership: Membership):
    return Message.objects.filter(
        group_id=membership.group_id, created_at__gte=membership.joined_at
    ).select_related("author")


def messages_after(
    membership: Membership, *, after: int, up_to: int | None = None, limit: int = RESUME_BATCH_SIZE
) -> list[dict]:
    """Up to ``limit`` payloads with ``after < seq <= up_to`` the member may see, oldest first.

    Precondition: ``membership`` is active (the caller authorised it in this unit of work).
    """
    query = _visible_to(membership).filter(seq__gt=max(after, 0))
    if up_to is not None:
        query = query.filter(seq__lte=up_to)
    return message_payloads(list(query.order_by("seq")[:limit]))


@dataclass(frozen=True)
class RoomPosition:
    """How far a room has got: its latest message ``seq`` and its latest change ``rev``."""

    seq: int
    rev: int


def _position(group_id: int) -> RoomPosition:
    row = Message.objects.filter(group_id=group_id).aggregate(seq=Max("seq"), rev=Max("rev"))
    return RoomPosition(seq=row["seq"] or 0, rev=row["rev"] or 0)


def room_position(membership_id: int) -> RoomPosition:
    """Authorise the socket's membership, then the room's position.

    Read it before the backlog: seqs and revs are committed in order under the group's lock, so
    everything up to the position is already stored, and anything newer arrives live.
    """
    membership = access_room_membership(membership_id)
    return _position(membership.group_id)


def room_backlog(
    membership_id: int, *, after: int, up_to: int, limit: int = RESUME_BATCH_SIZE
) -> list[dict]:
    """Authorise the socket's membership, then one batch of what it missed after ``after``
    (up to ``up_to``, from ``room_position``), oldest first. Page on with ``after`` = the last
    seq returned."""
    membership = access_room_membership(membership_id)
    return messages_after(membership, after=after, up_to=up_to, limit=limit)


def room_changes(
    membership_id: int, *, since: int, up_to: int, max_seq: int, limit: int = RESUME_BATCH_SIZE
) -> list[dict]:
    """Authorise the socket's membership, then the current state of the messages up to
    ``max_seq`` that changed after ``since`` (a ``rev``, up to ``up_to``), in ``rev`` order.

    A message changed twice appears once, in its latest state. Page on with ``since`` = the last
    rev returned.
    """
    membership = access_room_membership(membership_id)
    return _changes_after(membership, since=since, up_to=up_to, max_seq=max_seq, limit=limit)


def _changes_after(membership, *, since: int, up_to: int, max_seq: int, limit: int) -> list[dict]:
    query = _visible_to(membership).filter(rev__gt=max(since, 0), rev__lte=up_to, seq__lte=max_seq)
    return message_payloads(list(query.order_by("rev")[:limit]))


def room_catch_up(
    membership_id: int, *, after: int, since: int | None, limit: int = RESUME_BATCH_SIZE
) -> tuple[RoomPosition, list[dict], list[dict]]:
    """A socket's catch-up in one unit of work: authorise its membership once, read the room's
    position, then the first batch of messages after seq ``after`` (``room_backlog``) and, unless
    ``since`` is None, the first batch of older messages changed after rev ``since``
    (``room_changes``). Page on with those two when a batch comes back full."""
    membership = access_room_membership(membership_id)
    position = _position(membership.group_id)
    messages = (
        messages_after(membership, after=after, up_to=position.seq, limit=limit)
        if after < position.seq
        else []
    )
    changes = (
        _changes_after(membership, since=since, up_to=position.rev, max_seq=after, limit=limit)
        if since is not None and since < position.rev
        else []
    )
    return position, messages, changes


def messages_before(
    membership: Membership, *, before: int | None = None, limit: int = HISTORY_PAGE_SIZE
) -> tuple[list[dict], bool]:
    """One page of history ending just before ``before`` (the newest page when None),
    oldest first, and whether older messages remain."""
    query = _visible_to(membership).order_by("-seq")
    if before is not None:
        query = query.filter(seq__lt=before)
    rows = list(query[: limit + 1])
    has_more = len(rows) > limit
    return message_payloads(list(reversed(rows[:limit]))), has_more


def latest_seq(group: Group) -> int:
    return Message.objects.filter(group=group).aggregate(m=Max("seq"))["m"] or 0


def latest_position(group: Group) -> RoomPosition:
    """The room's latest ``seq`` and ``rev`` (for the room page to start the client from)."""
    return _position(group.pk)


@dataclass(frozen=True)
class RoomCheck:
    """What a connected socket re-learns every few seconds, in two queries plus a session read."""

    active: bool
    session_ok: bool
    latest_seq: int = 0
    latest_rev: int = 0
    listening: bool = False
    hide_presence: bool = False
    # The room's latest round and its version (0, 0: none), so a socket notices a round
    # broadcast it missed.
    round_id: int = 0
    round_version: int = 0
    # The member's content boundaries, so a change made while the socket's event was lost
    # still reaches it.
    soften_topics: frozenset[str] = frozenset()
    # Whom the member muted or blocked (their messages fold) and who blocked them (left out of
    # the presence this socket passes on): ids for the consumer only, never sent.
    # None: not read this time (``check_room_accesses(people=False)``); keep what you have.
    muted_ids: frozenset[int] | None = frozenset()
    blocked_by_ids: frozenset[int] | None = frozenset()

    @property
    def may_stay(self) -> bool:
        return self.active and self.session_ok


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _session_claims_by_key(session_keys) -> dict[str, tuple[str, str] | None]:
    """Session key -> whom it signs in (``_claims``), for the live (unexpired) sessions among
    ``session_keys``: one query with the database backend, one load per key with any other."""
    store = _session_store()
    keys = [k for k in set(session_keys) if k]
    if not issubclass(store, DatabaseSessionStore):
        return {k: _claims(data) for k in keys if (data := store(k).load())}
    rows = store.get_model_class().objects.filter(
        session_key__in=keys, expire_date__gt=timezone.now()
    )
    return {
        key: _session_claims(store, data, _secrets())
        for key, data in rows.values_list("session_key", "session_data")
    }


def _secrets() -> tuple:
    return (settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


@functools.lru_cache(maxsize=20_000)
def _session_claims(store, session_data: str, secrets: tuple) -> tuple[str, str] | None:
    """Whom a session's stored data signs in: (user id, session hash) as Django keeps them, or
    None; decoded (signature checked, unpacked) once per distinct value and signing keys. The
    periodic check reads every open socket's session every few seconds, and decoding them all
    anew was most of an idle server's CPU. Only the two values are kept, not the whole decoded
    data: a cache entry per open socket (bench/ scenario (c))."""
    return _claims(store().decode(session_data))


def _claims(data: dict) -> tuple[str, str] | None:
    """(user id, session hash) of a session's data, or None if it signs nobody in."""
    if SESSION_KEY not in data:
        return None
    return str(data[SESSION_KEY]), data.get(HASH_SESSION_KEY) or ""


@functools.lru_cache(maxsize=20_000)
def _auth_hashes(user_class, password: str, secrets: tuple) -> tuple[str, ...]:
    """The session hashes that sign in a user with this password hash (current key, then the
    fallbacks), exactly as Django computes them; the same for the same password and keys."""
    user = user_class(password=password)
    return (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())


def _signs_in(claims: tuple[str, str] | None, user_id: int, password: str) -> bool:
    """Does a session whose data claims ``claims`` (``_session_claims``) still sign in the user
    ``user_id`` whose password hash is ``password``? Not after logout, expiry, deletion, or a
    password change elsewhere (the checks Django makes on every request)."""
    if claims is None or claims[0] != str(user_id):
        return False
    session_hash = claims[1]
    hashes = _auth_hashes(User, password, _secrets())
    return any(constant_time_compare(session_hash, h) for h in hashes)


def _latest(model, field: str, order: str):
    """The newest ``field`` of ``model`` rows of the outer group (0 when none), through the
    (group, …) index rather than an aggregate over the whole room."""
    return Coalesce(
        Subquery(
            model.objects.filter(group_id=OuterRef("pk")).order_by(f"-{order}").values(field)[:1]
        ),
        0,
    )


def check_room_access(membership_id: int, *, session_key: str | None) -> RoomCheck:
    """May this socket stay in the room? Active membership of an active user, live session.

    Also returns the room's latest ``seq`` and ``rev`` so the socket can catch up on broadcasts
    it missed, and the member's mutes and blockers.
    """
    return check_room_accesses([(membership_id, session_key)])[(membership_id, session_key)]


def check_room_accesses(sockets, *, people: bool = True) -> dict[tuple[int, str | None], RoomCheck]:
    """``check_room_access`` for many sockets at once: (membership id, session key) -> check.

    A server process re-checks all its room sockets together on its periodic tick, in a fixed
    number of queries (memberships, rooms, sessions, and with ``people`` mutes and blocks)
    however many sockets it holds. Plain rows, no model instances: with hundreds of sockets per
    process, building instances was most of the check's cost, and the check holds the
    interpreter while the room's messages wait (bench/, docs/performance.md).

    ``people=False`` leaves mutes and blocks unread (``muted_ids`` and ``blocked_by_ids`` are
    None: keep what you have): each change sends ``people.changed`` at once, so this re-read is
    only the backstop for a lost event and needn't run on every tick.
    """
    sockets = list(dict.fromkeys(sockets))
    rows = (
        Membership.objects.filter(
            pk__in={mid for mid, _key in sockets},
            status=MembershipStatus.ACTIVE,
            user__is_active=True,
        )
        .annotate(
            soften_topics=Subquery(
                RoomPreference.objects.filter(user_id=OuterRef("user_id"))
                .order_by()
                .values("soften_topics")[:1]
            )
        )
        .values_list(
            "pk",
            "group_id",
            "user_id",
            "user__password",
            "listening",
            "hide_presence",
            "soften_topics",
        )
    )
    memberships = {row[0]: row for row in rows}
    rooms = {
        g["pk"]: g
        for g in Group.objects.filter(pk__in={row[1] for row in memberships.values()})
        .annotate(
            latest_seq=_latest(Message, "seq", "seq"),
            latest_rev=_latest(Message, "rev", "rev"),
            round_id=_latest(Round, "pk", "pk"),
            round_version=_latest(Round, "version", "pk"),
        )
        .values("pk", "latest_seq", "latest_rev", "round_id", "round_version")
    }
    sessions = _session_claims_by_key(key for mid, key in sockets if mid in memberships)
    found = mutes_and_blockers_of({row[2] for row in memberships.values()}) if people else {}
    checks = {}
    for mid, key in sockets:
        row = memberships.get(mid)
        if row is None:
            checks[(mid, key)] = RoomCheck(active=False, session_ok=True)
            continue
        _pk, group_id, user_id, password, listening, hide_presence, soften = row
        room = rooms[group_id]
        muted, blocked_by = found.get(user_id, (None, None))
        checks[(mid, key)] = RoomCheck(
            active=True,
            session_ok=_signs_in(sessions.get(key), user_id, password),
            latest_seq=room["latest_seq"],
            latest_rev=room["latest_rev"],
            listening=listening,
            hide_presence=hide_presence,
            round_id=room["round_id"],
            round_version=room["round_version"],
            soften_topics=known_topics(soften),
            muted_ids=muted,
            blocked_by_ids=blocked_by,
        )
    return checks


def unread_counts(user) -> dict[int, int]:
    """Group id → messages since the member last read, for each of their active groups.

    Their own messages, waves, deleted and hidden ones do not count as unread.
    """
    if not user.is_authenticated:
        return {}
    rows = (
        Membership.objects.filter(user=user, status=MembershipStatus.ACTIVE)
        .annotate(
            unread=Count(
                "group__messages",
                filter=Q(group__messages__seq__gt=F("last_read_seq"))
                & Q(group__messages__created_at__gte=F("joined_at"))
                & Q(group__messages__kind=MessageKind.TEXT)
                & Q(group__messages__deleted_at__isnull=True)
                & Q(group__messages__hidden_at__isnull=True)
                & Q(group__messages__held_at__isnull=True)
                & ~Q(group__messages__author=user),
            )
        )
        .values_list("group_id", "unread")
    )
    return dict(rows)
