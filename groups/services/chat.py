"""Writes for a group's chat room: posting (with ``seq``, idempotency and rate limits), editing,
deleting, reactions, waves, read markers, and presence.

Delivery model: PostgreSQL is the truth. ``post_message`` stores a message with the group's next
``seq`` inside one transaction, holding the group's row lock so concurrent senders get 1, 2, 3…
with no gaps (on SQLite the IMMEDIATE transaction serialises writers the same way). The
broadcast happens only after commit, through ``community.realtime``. A broadcast the channel
layer drops costs latency, never a message: sockets and clients catch up by ``seq``.

Changes to a stored message (edit, deletion, hide, reaction) are numbered the same way: under
the group's row lock the message gets the group's next ``rev`` (1, 2, 3… per group, one per
change), so a socket or client that knows the last ``rev`` it saw catches up on every change it
missed, from the database, exactly as it does for messages by ``seq``.

Presence (who is here now) is in ``groups.services.presence``.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import User
from community.ratelimits import Limit, enforce
from community.realtime import (
    MEMBERSHIP_CHANGED,
    room_group,
    send_event_on_commit,
    user_channel_group,
)
from groups.models import (
    CONTENT_WARNING_MAX_CHARS,
    EDIT_WINDOW,
    MESSAGE_MAX_CHARS,
    Group,
    GroupKind,
    Membership,
    MembershipStatus,
    Message,
    MessageKind,
    MessageReaction,
    ReactionKind,
)
from groups.selectors.chat import message_payloads
from groups.topics import message_topics, topic_choices
from moderation.services.screening import screen_message

__all__ = [
    "RATE_LIMIT_COUNT",
    "RATE_LIMIT_WINDOW_SECONDS",
    "PostResult",
    "broadcast_message_update",
    "delete_message",
    "edit_message",
    "erase_message",
    "lock_room",
    "mark_read",
    "post_message",
    "posting_refusal",
    "send_wave",
    "toggle_reaction",
]

logger = logging.getLogger(__name__)

RATE_LIMIT_COUNT = 10
RATE_LIMIT_WINDOW_SECONDS = 10
CHAT_LIMIT = Limit("chat", RATE_LIMIT_COUNT, RATE_LIMIT_WINDOW_SECONDS)


@dataclass(frozen=True)
class PostResult:
    """``created`` is False when ``client_id`` was already stored: a retry, acked as before."""

    message: Message
    payload: dict
    created: bool


# --- Rules ------------------------------------------------------------------------------------


def _active_membership(group: Group, user):
    return Membership.objects.filter(
        group=group, user=user, status=MembershipStatus.ACTIVE, user__is_active=True
    ).select_related("group", "user")


def _not_member() -> PermissionDenied:
    return PermissionDenied(_("This space is for the group's members."), code="not_member")


def _membership(group: Group, user) -> Membership:
    membership = _active_membership(group, user).first()
    if membership is None:
        raise _not_member()
    return membership


def _membership_to_post(group: Group, user, client_id: uuid.UUID) -> Membership:
    """``_membership`` (the same rule: an active membership of an active account) plus, in the
    same query, the room's last ``seq`` (``last_seq``) and the id of the message this author
    already stored under ``client_id`` (``stored_id``, None for a first send).

    Written in SQL because it runs for every message: the ORM spends several milliseconds
    building this query (two correlated subqueries) each time, more than everything else in a
    send. Its ``group`` is the one ``lock_room`` just read; its ``user`` is ``user``.

    Precondition: holding ``lock_room(group.pk)``, so the last seq stays the last.
    """
    client_id_value = Message._meta.get_field("client_id").get_db_prep_value(client_id, connection)
    membership = next(
        iter(
            Membership.objects.raw(
                _posting_sql(),
                [client_id_value, group.pk, user.pk, MembershipStatus.ACTIVE, True],
            )
        ),
        None,
    )
    if membership is None:
        raise _not_member()
    membership.group, membership.user = group, user
    return membership


@functools.cache
def _posting_sql() -> str:
    qn = connection.ops.quote_name
    members, users, messages = (qn(model._meta.db_table) for model in (Membership, User, Message))
    return (
        f"SELECT m.*, "  # noqa: S608 -- only the models' table names; values are parameters
        f"(SELECT seq FROM {messages} WHERE group_id = m.group_id ORDER BY seq DESC LIMIT 1)"
        f" AS last_seq, "
        f"(SELECT id FROM {messages} WHERE group_id = m.group_id AND author_id = m.user_id"
        f" AND client_id = %s) AS stored_id "
        f"FROM {members} m JOIN {users} u ON u.id = m.user_id "
        f"WHERE m.group_id = %s AND m.user_id = %s AND m.status = %s AND u.is_active = %s"
    )


def _local_time(moment, user) -> str:
    try:
        zone = ZoneInfo(user.time_zone)
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return formats.date_format(moment.astimezone(zone), "DATETIME_FORMAT")


def _check_may_post(membership: Membership, *, now) -> None:
    """Posting (and editing, reacting, waving) needs an open group, the current agreement, and
    no mute. Listen-only members may post: listening is a presence label, not a lock."""
    group = membership.group
    if group.is_archived and group.kind == GroupKind.PAIR:
        raise DomainError(
            _("This connection has ended. Your messages stay here to read."),
            code="connection_ended",
        )
    if group.is_archived:
        raise DomainError(
            _("This group has closed. Its room stays here to read, but it's quiet now."),
            code="archived",
        )
    if not membership.agreement_is_current():
        raise DomainError(
            _(
                "The group's agreement has changed. Please read the new version on the group's "
                "page; you can post again once you've accepted it."
            ),
            code="agreement_changed",
            url=reverse("groups:detail", kwargs={"slug": group.slug}),
        )
    if membership.is_muted(now):
        raise DomainError(
            _("You can read along, but posting is paused for you until %(until)s.")
            % {"until": _local_time(membership.muted_until, membership.user)},
            code="muted",
            until=membership.muted_until.isoformat(),
        )


def posting_refusal(membership: Membership, *, now=None) -> DomainError | None:
    """Why this member can't post right now (for the room page to say so), or None."""
    try:
        _check_may_post(membership, now=now or timezone.now())
    except DomainError as error:
        return error
    return None


def _storable(text: str) -> bool:
    """Text the database can keep: no NUL characters (PostgreSQL refuses them) and no lone
    surrogates (they have no UTF-8 form). Anything else a person can type is fine."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_body(body) -> str:
    if body is not None and not (isinstance(body, str) and _storable(body)):
        raise DomainError(_("A message needs to be text."), code="bad_body")
    if not body or not body.strip():
        raise DomainError(
            _("There's nothing to send yet. Write a few words first."), code="empty_body"
        )
    body = body.strip()
    if len(body) > MESSAGE_MAX_CHARS:
        raise DomainError(
            _(
                "That's a little long for one message (%(count)s characters; the limit is "
                "%(limit)s). You could split it into two."
            )
            % {"count": len(body), "limit": MESSAGE_MAX_CHARS},
            code="body_too_long",
        )
    return body


def _clean_content_warning(content_warning) -> str:
    if content_warning is None:
        return ""
    if not (isinstance(content_warning, str) and _storable(content_warning)):
        raise DomainError(
            _("The content note needs to be a few words of text."), code="bad_content_warning"
        )
    content_warning = " ".join(content_warning.split())
    if len(content_warning) > CONTENT_WARNING_MAX_CHARS:
        raise DomainError(
            _("Please keep the content note under %(limit)s characters.")
            % {"limit": CONTENT_WARNING_MAX_CHARS},
            code="content_warning_too_long",
        )
    return content_warning


def _clean_client_id(client_id) -> uuid.UUID:
    try:
        return uuid.UUID(str(client_id))
    except (ValueError, TypeError, AttributeError):
        raise DomainError(
            _("This message is missing its identifier. Reloading the page will fix it."),
            code="bad_client_id",
        ) from None


def _check_rate(group: Group, user) -> None:
    """At most RATE_LIMIT_COUNT posts per member and group in any RATE_LIMIT_WINDOW_SECONDS,
    counted in Redis (``community.ratelimits``: a sliding window; a refused post isn't counted;
    if Redis is unreachable the post goes through rather than be lost)."""
    enforce(
        (CHAT_LIMIT, f"{group.pk}:{user.pk}"),
        message=_(
            "That's a lot of messages in a short time. Take a breath; you can send again in %(seconds)s seconds."
        ),
    )


def _broadcast(message: Message, event_type: str, *, new: bool = False) -> dict:
    payload = message_payloads([message], new=new)[0]
    # Not waited for: the room's sockets order messages and changes by seq and rev themselves.
    send_event_on_commit(
        room_group(message.group_id), {"type": event_type, "message": payload}, wait=False
    )
    return payload


def lock_room(group_id: int) -> Group:
    """Serialise writes to a group's messages: ``seq`` and ``rev`` are each max + 1.

    Every writer takes it first in its transaction, before touching a message row, so writers
    never wait for each other in opposite orders (a PostgreSQL deadlock).

    Returns the group as locked, with the fields posting checks (kind, slug, agreement
    version, archived) and the rest deferred. In SQL: it runs for every message, and the ORM's
    ``select_for_update`` query costs far more to build than to run. Raises
    ``Group.DoesNotExist`` for an unknown id.
    """
    sql = (
        f"SELECT id, kind, slug, agreement_version, archived_at "  # noqa: S608 -- a model's table name; the id is a parameter
        f"FROM {connection.ops.quote_name(Group._meta.db_table)} WHERE id = %s"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    group = next(iter(Group.objects.raw(sql, [group_id])), None)
    if group is None:
        raise Group.DoesNotExist(f"No group {group_id}")
    return group


def _record_change(message: Message) -> dict:
    """Give a changed message the group's next ``rev`` and tell the room after commit.

    Precondition: inside the transaction that changed ``message`` (which holds its new state),
    holding the group's row lock (``lock_room``), so revs commit in order with no gaps.
    """
    last = Message.objects.filter(group_id=message.group_id).aggregate(m=Max("rev"))["m"] or 0
    message.rev = last + 1
    Message.objects.filter(pk=message.pk).update(rev=message.rev)
    return _broadcast(message, "chat.update")


@transaction.atomic
def broadcast_message_update(message: Message) -> None:
    """Record that a message changed (moderation's hide/unhide) and tell the room after commit.

    Readers who miss the broadcast get the new state when they next catch up by ``rev``.
    Precondition: ``message`` holds its new state; call inside the transaction that wrote it,
    which called ``lock_room(message.group_id)`` before writing the message row.
    """
    lock_room(message.group_id)
    _record_change(message)


# --- Posting ----------------------------------------------------------------------------------


def post_message(
    group: Group,
    *,
    author,
    client_id,
    body: str = "",
    content_warning: str | None = "",
    kind: str = MessageKind.TEXT,
    on_store: Callable[[Message], None] | None = None,
    suggest_note: bool = False,
) -> PostResult:
    """Store a message with the group's next ``seq``; broadcast it after commit.

    Sending the same ``client_id`` again stores nothing and returns the original (a retry after
    a dropped connection). Raises DomainError (nothing stored) when a rule says no.

    ``on_store(message)`` runs inside the storing transaction, after screening and before the
    broadcast payload is built: a feature that hangs a row on the message (a check-in card, a
    round's turn) does it there, so both commit together or neither does. It is not called for
    a retry of a stored ``client_id``.

    ``suggest_note``: when the words touch on a sensitive topic and there is no content note,
    raise DomainError ``suggest_content_note`` (naming the topics) instead of storing, so the
    sender can choose to add one. They send again with ``suggest_note=False`` to send as it is:
    a suggestion, never a rule. The message's topics (``groups.topics``) are stored either way.
    """
    client_id = _clean_client_id(client_id)
    if kind == MessageKind.TEXT:
        body = _clean_body(body)
        content_warning = _clean_content_warning(content_warning)
    elif kind == MessageKind.CHECK_IN:
        # A check-in card's note is optional; when there is one it is checked (and screened)
        # like any message's words.
        body, content_warning = (_clean_body(body) if body else ""), ""
    else:
        body, content_warning = "", ""

    topics = message_topics(body, content_warning) if body else []
    try:
        if suggest_note and topics and not content_warning:
            # Before the rate limit: a suggestion is not a post, so it costs the sender nothing.
            choices = topic_choices(topics)
            raise DomainError(
                _(
                    "This touches on %(topics)s. Would you like to add a content note? It folds "
                    "your message for anyone who'd rather open it when ready."
                )
                % {"topics": ", ".join(c["phrase"] for c in choices)},
                code="suggest_content_note",
                topics=choices,
            )
        _check_rate(group, author)
    except DomainError:
        # A retry must be acked even when the limit (or a suggestion) would now refuse it; only
        # looked up here, so a first send costs no extra query.
        existing = Message.objects.filter(group=group, author=author, client_id=client_id).first()
        if existing is None:
            raise
        _membership(group, author)
        return PostResult(existing, message_payloads([existing])[0], created=False)

    with transaction.atomic():
        # The row lock serialises this group's senders, so seq is max + 1 with no gaps.
        locked = lock_room(group.pk)
        membership = _membership_to_post(locked, author, client_id)
        if membership.stored_id is not None:
            # A retry (also one whose mute or agreement change came after the original).
            existing = Message.objects.select_related("author").get(pk=membership.stored_id)
            return PostResult(existing, message_payloads([existing])[0], created=False)
        now = timezone.now()
        _check_may_post(membership, now=now)
        message = Message.objects.create(
            group=group,
            seq=(membership.last_seq or 0) + 1,
            author=author,
            client_id=client_id,
            kind=kind,
            body=body,
            content_warning=content_warning,
            topics=topics,
            created_at=now,
        )
        message.author = author
        # Moderation screens it in this transaction: a held message is stored with
        # ``held_at`` (only its author sees its words); flags and crisis open queue items.
        screen_message(message)
        if on_store is not None:
            on_store(message)
        # Nobody can have reacted yet: no reactions query (but a check-in card is read).
        payload = _broadcast(message, "chat.message", new=True)
    logger.info("Chat message stored: group=%s seq=%s kind=%s", group.pk, message.seq, kind)
    return PostResult(message, payload, created=True)


def send_wave(group: Group, *, user, client_id) -> PostResult:
    """A one-tap hello to the room that expects no reply; stored and ordered like a message."""
    return post_message(group, author=user, client_id=client_id, kind=MessageKind.WAVE)


# --- Changing a message -----------------------------------------------------------------------


def _message(group: Group, seq, membership: Membership) -> Message:
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise DomainError(_("We couldn't find that message."), code="message_not_found")
    message = (
        Message.objects.select_related("author")
        .filter(group=group, seq=seq, created_at__gte=membership.joined_at)
        .first()
    )
    if message is None:
        raise NotFound(_("We couldn't find that message."), code="message_not_found")
    return message


@transaction.atomic
def edit_message(group: Group, *, author, seq: int, body: str) -> Message:
    """Change the words of one's own message within 10 minutes of sending it."""
    body = _clean_body(body)
    lock_room(group.pk)
    membership = _membership(group, author)
    now = timezone.now()
    _check_may_post(membership, now=now)
    message = _message(group, seq, membership)
    if message.author_id != author.pk:
        raise PermissionDenied(_("You can only edit your own messages."), code="not_yours")
    if not message.is_visible or message.kind != MessageKind.TEXT or message.held_at:
        raise DomainError(_("That message can't be edited any more."), code="not_editable")
    if message.created_at < now - EDIT_WINDOW:
        raise DomainError(
            _(
                "Messages can be edited for 10 minutes after sending. You could add a new one instead."
            ),
            code="edit_window_passed",
        )
    topics = message_topics(body, message.content_warning)
    # Conditional update: a concurrent delete or hide wins, and this changes nothing.
    updated = Message.objects.filter(
        pk=message.pk, deleted_at__isnull=True, hidden_at__isnull=True
    ).update(body=body, topics=topics, edited_at=now)
    if updated != 1:
        raise DomainError(_("That message can't be edited any more."), code="not_editable")
    message.body, message.topics, message.edited_at = body, topics, now
    _record_change(message)
    return message


@transaction.atomic
def delete_message(group: Group, *, actor, seq: int) -> Message:
    """Delete one's own message: its words are erased, its place (``seq``) stays.

    Allowed while muted, with an outdated agreement or in an archived group: people may always
    take back their own words.
    """
    lock_room(group.pk)
    membership = _membership(group, actor)
    message = _message(group, seq, membership)
    if message.author_id != actor.pk:
        raise PermissionDenied(_("You can only delete your own messages."), code="not_yours")
    erase_message(message)
    return message


def erase_message(message: Message) -> None:
    """Erase a message's words and reactions (its ``seq`` stays) and tell the room with an
    ``update`` (deleted) after commit. Erasing an erased message changes nothing.

    Precondition: inside a transaction holding ``lock_room(message.group_id)``, and the caller
    has decided the actor may (``delete_message``: its author; ``delete_check_in``: the owner
    of the check-in the message is the card of).
    """
    if message.deleted_at is not None:
        return
    now = timezone.now()
    Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
        deleted_at=now, body="", content_warning="", topics=[]
    )
    MessageReaction.objects.filter(message=message).delete()
    message.deleted_at, message.body, message.content_warning = now, "", ""
    message.topics = []
    _record_change(message)


@transaction.atomic
def toggle_reaction(group: Group, *, user, seq: int, reaction: str) -> bool:
    """Add the reaction if the member hasn't given it to this message, else take it back.

    Returns True when it was added.
    """
    if reaction not in ReactionKind.values:
        raise DomainError(
            _("That reaction isn't one of the room's reactions."), code="unknown_reaction"
        )
    lock_room(group.pk)
    membership = _membership(group, user)
    _check_may_post(membership, now=timezone.now())
    message = _message(group, seq, membership)
    if not message.is_visible or message.held_at:
        raise DomainError(_("That message can't take reactions."), code="not_reactable")
    removed, _detail = MessageReaction.objects.filter(
        message=message, user=user, reaction=reaction
    ).delete()
    if not removed:
        try:
            with transaction.atomic():  # a savepoint: a double tap racing itself adds one
                MessageReaction.objects.create(message=message, user=user, reaction=reaction)
        except IntegrityError:
            pass
    _record_change(message)
    return not removed


# --- Reading ----------------------------------------------------------------------------------


def mark_read(group: Group, *, user, seq: int) -> int:
    """Remember that the member has read up to ``seq``; it never moves backwards.

    Returns the stored marker.
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise DomainError(_("We couldn't find that message."), code="message_not_found")
    membership = _membership(group, user)
    latest = Message.objects.filter(group=group).aggregate(m=Max("seq"))["m"] or 0
    seq = min(seq, latest)
    Membership.objects.filter(pk=membership.pk, last_read_seq__lt=seq).update(last_read_seq=seq)
    return max(seq, membership.last_read_seq)


# --- Membership changes reach open sockets at once ---------------------------------------------


@receiver(post_save, sender=Membership, dispatch_uid="chat_membership_changed")
def _membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    """Leaving, removal, a ban or a role change saved through a service: the member's open
    sockets re-check their access right after commit instead of at their next periodic check."""
    if not created:
        send_event_on_commit(
            user_channel_group(instance.user_id),
            {"type": MEMBERSHIP_CHANGED, "group_id": instance.group_id},
        )
