"""A member's own data: a copy of everything held about them, and erasing their account.

Export: ``request_data_export`` makes a ``DataExport`` row; a small account's is built at once,
a large one's by ``community.tasks.task_build_data_export`` after commit. ``build_data_export``
is safe to run twice (a conditional update from "being prepared" to "ready" wins once). The
file is reachable for ``EXPORT_DAYS`` through a signed link naming the export and its owner
(``community.data_selectors.exports``); expired exports are deleted by the hourly tidy task.

Erasure (``erase_account``), after the member re-entered their password, in one transaction:

- their safe-person connections end (the pair room is archived, as when either ends it), and
  they leave every group and waitlist, so seats pass on and rounds move past them;
- their messages are erased (each becomes "message removed" through ``erase_message``: its
  ``seq`` stays, the room gets an ``update``) or, if they chose to keep them, stay with no
  author and read "Former member". Check-in cards are always erased: check-ins go;
- check-ins, preferences, notifications, connections, invitations, availability, status,
  mutes and blocks they made, RSVPs, reminders, exports, sessions, email addresses, two-step
  sign-in and admin log lines about them are deleted; notifications that name them in other
  members' inboxes are deleted, and other members' exports that mention them too (they can
  prepare a fresh one);
- if nothing in the moderation queue still needs them, the account row is deleted (the rest
  goes with it by cascade). Otherwise the row stays, scrubbed (no email, no name, no password,
  inactive), with an ``AccountErasure`` listing the messages whose words open items still need:
  those are already "message removed" in the room, but moderators still read them. When items
  close, ``finish_erasures`` (called after commit from moderation's close path, and hourly as a
  sweep) clears each message's words once none of its items is open, blanks the details of
  reports and appeals they wrote whose items closed, and deletes the account once nothing is
  open.

The moderation audit log holds ids and codes only (and moderators' reasons), so nothing the
member wrote is in it; its rows stay, their actor link cleared.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.models import (
    AccountErasure,
    Block,
    DataExport,
    ExportStatus,
    Mute,
    Notification,
    NotificationPreference,
    User,
)
from community.services.sessions import end_every_session

__all__ = [
    "EXPORT_DAYS",
    "build_data_export",
    "delete_expired_exports",
    "erase_account",
    "finish_erasures",
    "finish_erasures_after_commit",
    "request_data_export",
]

logger = logging.getLogger(__name__)

EXPORT_DAYS = 7
# Up to this many messages and notifications, an export is built during the request itself.
DEFAULT_INLINE_MAX_ROWS = 2000
# A member keeps at most this many ready exports; older ones are deleted as new ones arrive.
KEEP_READY_EXPORTS = 3
# An export still "being prepared" after this long lost its task (a worker died under it).
STUCK_AFTER = timedelta(hours=1)
# A fresh copy is built at most this often; asking sooner returns the one just made.
REBUILD_AFTER = timedelta(minutes=1)


# --- Export -------------------------------------------------------------------------------------


def _inline_max_rows() -> int:
    return int(getattr(settings, "DATA_EXPORT_INLINE_MAX_ROWS", DEFAULT_INLINE_MAX_ROWS))


def _account_size(user: User) -> int:
    from groups.models import Message

    return (
        Message.objects.filter(author=user).count() + Notification.objects.filter(user=user).count()
    )


def request_data_export(user: User, *, actor: User | None = None) -> DataExport:
    """Prepare a copy of everything held about ``user``, for ``user`` alone.

    One export is prepared at a time: while one is being prepared (or a minute after one was
    made), asking again returns it. A small account's copy is ready on return; a large one's
    is built by a Celery task that is enqueued when this commits.
    """
    actor = user if actor is None else actor
    if not (user and user.is_authenticated and user.is_active) or actor.pk != user.pk:
        raise PermissionDenied(_("You can only download your own data."), code="not_your_data")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()
        now = timezone.now()
        # Being prepared, or made a moment ago (a double click): that one, not another build.
        current = (
            DataExport.objects.filter(
                Q(status=ExportStatus.PENDING, requested_at__gt=now - STUCK_AFTER)
                | Q(status=ExportStatus.READY, ready_at__gt=now - REBUILD_AFTER)
            )
            .filter(user=user)
            .order_by("-requested_at")
            .first()
        )
        if current is not None:
            return current
        # One "being prepared" for so long lost its task: let the member start again.
        DataExport.objects.filter(user=user, status=ExportStatus.PENDING).update(
            status=ExportStatus.FAILED
        )
        export = DataExport.objects.create(user=user)
        inline = _account_size(user) <= _inline_max_rows()
        if not inline:
            from community.tasks import task_build_data_export

            export_id = export.pk
            transaction.on_commit(lambda: task_build_data_export.delay(export_id=export_id))
    if inline:
        build_data_export(export.pk)
        export.refresh_from_db()
    logger.info("data export %s requested (%s)", export.pk, "inline" if inline else "queued")
    return export


def build_data_export(export_id: int) -> bool:
    """Build export ``export_id`` if it is still being prepared. Returns True when this call
    made it ready; a second run (or one for an export that's gone) changes nothing."""
    from community.data_selectors import export_content

    export = DataExport.objects.filter(pk=export_id, status=ExportStatus.PENDING).first()
    if export is None:
        return False
    user = User.objects.filter(pk=export.user_id, is_active=True).first()
    if user is None:  # erased (or closed) meanwhile: there is nobody to give it to
        DataExport.objects.filter(pk=export_id).delete()
        return False
    now = timezone.now()
    try:
        content = export_content(user, now=now)
    except Exception as error:
        # Only the error's kind is logged: its text could quote the member's data.
        logger.error("data export %s could not be built: %s", export_id, type(error).__name__)
        DataExport.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
            status=ExportStatus.FAILED
        )
        return False
    with transaction.atomic():
        made = DataExport.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
            status=ExportStatus.READY,
            content=content,
            ready_at=now,
            expires_at=now + timedelta(days=EXPORT_DAYS),
        )
        if made == 1:
            older = DataExport.objects.filter(user=user, status=ExportStatus.READY).order_by(
                "-ready_at", "-id"
            )[KEEP_READY_EXPORTS:]
            DataExport.objects.filter(pk__in=list(older.values_list("pk", flat=True))).delete()
    logger.info("data export %s %s", export_id, "ready" if made else "was already built")
    return made == 1


def delete_expired_exports(*, now=None) -> int:
    """Delete exports past their expiry, and ones stuck "being prepared" for a day (their task
    was lost; the member can ask again). Returns how many went."""
    now = now or timezone.now()
    deleted, _detail = DataExport.objects.filter(
        Q(expires_at__lte=now)
        | Q(status=ExportStatus.PENDING, requested_at__lte=now - timedelta(days=1))
        | Q(status=ExportStatus.FAILED, requested_at__lte=now - timedelta(days=1))
    ).delete()
    return deleted


# --- Erasure: what open moderation items still need --------------------------------------------


def _open_items(user: User, kept_message_ids=()):
    from moderation.models import ItemStatus, QueueItem

    return QueueItem.objects.exclude(status=ItemStatus.CLOSED).filter(
        Q(member=user)
        | Q(message__author=user)
        | Q(message_id__in=list(kept_message_ids))
        | Q(report__reporter=user)
        | Q(report__reported_member=user)
        | Q(appeal__member=user)
    )


def _open_message_ids(message_ids) -> set[int]:
    from moderation.models import ItemStatus, QueueItem

    return set(
        QueueItem.objects.exclude(status=ItemStatus.CLOSED)
        .filter(message_id__in=list(message_ids))
        .values_list("message_id", flat=True)
    )


# --- Erasure: messages, groups and connections ---------------------------------------------------


def _withdraw_message(message) -> None:
    """ "Message removed" for the room now, words kept for the moderators of its open item.

    Precondition: inside a transaction holding ``lock_room(message.group_id)``.
    """
    from groups.models import Message, MessageReaction
    from groups.services import broadcast_message_update

    if message.deleted_at is not None:
        return
    now = timezone.now()
    Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(deleted_at=now)
    MessageReaction.objects.filter(message=message).delete()
    message.deleted_at = now
    broadcast_message_update(message)


def _settle_messages(user: User, group_id: int, *, keep_messages: bool) -> list[int]:
    """Erase or keep ``user``'s messages in one group, and take back their reactions there.
    Returns the ids of messages whose words open items still need.

    Precondition: inside a transaction holding ``lock_room(group_id)``.
    """
    from groups.models import Message, MessageKind, MessageReaction
    from groups.services import broadcast_message_update, erase_message

    messages = list(Message.objects.filter(group_id=group_id, author=user).order_by("seq"))
    needed = _open_message_ids(m.pk for m in messages)
    # Authorless first, so every update the room gets already reads "Former member".
    Message.objects.filter(group_id=group_id, author=user).update(author=None)
    kept = []
    for message in messages:
        message.author = None
        if message.pk in needed:
            if not keep_messages or message.kind == MessageKind.CHECK_IN:
                _withdraw_message(message)
                kept.append(message.pk)
        elif not keep_messages or message.kind == MessageKind.CHECK_IN:
            erase_message(message)
    reacted = list(
        Message.objects.filter(
            group_id=group_id, pk__in=MessageReaction.objects.filter(user=user).values("message_id")
        )
    )
    MessageReaction.objects.filter(user=user, message__group_id=group_id).delete()
    for message in reacted:
        broadcast_message_update(message)  # the reaction counts changed
    return kept


def _release_claims(user: User) -> None:
    """A moderator leaving: items they were looking after go back to the queue."""
    from moderation.models import ItemStatus, QueueItem
    from moderation.services import release_item

    for item in QueueItem.objects.filter(assignee=user, status=ItemStatus.CLAIMED):
        release_item(item, moderator=user)


def _end_connections(user: User) -> None:
    from groups.models import SafeConnection
    from groups.services import end_safe_connection_with

    live = SafeConnection.objects.filter(
        Q(user_low=user) | Q(user_high=user), ended_at__isnull=True
    ).select_related("user_low", "user_high")
    for connection in live:
        other = connection.user_high if connection.user_low_id == user.pk else connection.user_low
        end_safe_connection_with(user, other=other, actor=user)


def _erase_practice_space(user: User) -> None:
    """The practice space goes whatever the member chose for group messages: nobody else ever
    read it, and the companion's replies quote the member (companion.services.spaces)."""
    from companion.services import erase_practice_space_for_account

    erase_practice_space_for_account(user)


def _leave_groups(user: User, *, keep_messages: bool) -> list[int]:
    """Settle messages and leave, group by group in id order (one room lock at a time, always
    in the same order, as every writer takes them). Returns the ids of messages kept for
    moderation."""
    from groups.models import (
        Group,
        Membership,
        MembershipStatus,
        Message,
        MessageReaction,
        WaitlistEntry,
        WaitStatus,
    )
    from groups.services import leave_group, leave_waitlist, lock_room

    waiting = WaitlistEntry.objects.filter(
        user=user, status__in=[WaitStatus.WAITING, WaitStatus.OFFERED]
    )
    group_ids = (
        set(Message.objects.filter(author=user).values_list("group_id", flat=True))
        | set(Membership.objects.filter(user=user).values_list("group_id", flat=True))
        | set(MessageReaction.objects.filter(user=user).values_list("message__group_id", flat=True))
        | set(waiting.values_list("group_id", flat=True))
    )
    kept: list[int] = []
    for group_id in sorted(group_ids):
        lock_room(group_id)
        kept += _settle_messages(user, group_id, keep_messages=keep_messages)
        group = Group.objects.get(pk=group_id)
        if Membership.objects.filter(
            group_id=group_id, user=user, status=MembershipStatus.ACTIVE
        ).exists():
            leave_group(group, user=user)
        if waiting.filter(group_id=group_id).exists():
            leave_waitlist(group, user=user)  # a held seat passes on
    return kept


# --- Erasure: personal rows, and mentions elsewhere -------------------------------------------


def _notifications_naming(user: User) -> Q:
    """Other members' notifications whose title names ``user``, by their dedupe keys. A new
    notification that names a member belongs here."""
    from groups.models import CheckIn, SafeConnection, SafePersonInvite

    keys = [
        f"check_in_shared:{pk}"
        for pk in CheckIn.objects.filter(user=user).values_list("pk", flat=True)
    ]
    keys += [
        f"safe-invite:{pk}"
        for pk in SafePersonInvite.objects.filter(inviter=user).values_list("pk", flat=True)
    ]
    q = Q(dedupe_key__in=keys)
    for pk in SafeConnection.objects.filter(Q(user_low=user) | Q(user_high=user)).values_list(
        "pk", flat=True
    ):
        q |= Q(dedupe_key__startswith=f"safe-connected:{pk}:")
    return q


def _json_forms(text: str) -> set[str]:
    """``text`` as it appears inside stored JSON (escaped or not, whatever the database)."""
    return {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}


def _forget_elsewhere(user: User) -> None:
    """Notifications naming the member in others' inboxes; others' exports that mention them
    (found by their name or address anywhere in the file, erring on the side of privacy)."""
    Notification.objects.exclude(user=user).filter(_notifications_naming(user)).delete()
    mentions = Q()
    for text in _json_forms(user.display_name) | _json_forms(user.email):
        mentions |= Q(text__contains=text)
    (
        DataExport.objects.exclude(user=user)
        .filter(content__isnull=False)
        .annotate(text=Cast("content", TextField()))
        .filter(mentions)
        .delete()
    )


def _delete_personal_rows(user: User) -> None:
    """Everything personal that moderation never needs, and every session of the account."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from groups.models import (
        AvailabilityWindow,
        CalendarFeed,
        CheckIn,
        JoinRequest,
        Membership,
        Reminder,
        RoomPreference,
        Rsvp,
        SafeConnection,
        SafePersonInvite,
        SafeStatus,
        WaitlistEntry,
    )

    _forget_elsewhere(user)  # before the rows it looks the mentions up by
    for model, lookup in (
        (CheckIn, Q(user=user)),
        (RoomPreference, Q(user=user)),
        (NotificationPreference, Q(user=user)),
        (Notification, Q(user=user)),
        (Mute, Q(user=user)),
        (Block, Q(user=user)),
        (SafePersonInvite, Q(inviter=user) | Q(invitee=user)),
        (SafeConnection, Q(user_low=user) | Q(user_high=user)),
        (AvailabilityWindow, Q(user=user)),
        (SafeStatus, Q(user=user)),
        (DataExport, Q(user=user)),
        (Rsvp, Q(user=user)),
        (Reminder, Q(user=user)),
        (CalendarFeed, Q(user=user)),
        (JoinRequest, Q(user=user)),
        (WaitlistEntry, Q(user=user)),
        (Membership, Q(user=user)),
        (EmailAddress, Q(user=user)),
        (Authenticator, Q(user=user)),
    ):
        model.objects.filter(lookup).delete()
    user_type = ContentType.objects.get_for_model(User)
    # The admin's history: lines by them, about them, and any naming them (a membership's
    # ``str`` does).
    LogEntry.objects.filter(
        Q(user=user)
        | Q(content_type=user_type, object_id=str(user.pk))
        | Q(object_repr__contains=user.display_name)
    ).delete()
    user.groups.clear()
    user.user_permissions.clear()
    end_every_session(user, reason="erased")  # each socket closes after commit


def _scrub(user: User) -> None:
    """The row moderation still points at: nothing of the member left in it. ``@`` can't be
    in a name members choose, so the placeholder name never collides with one."""
    User.objects.filter(pk=user.pk).update(
        email=f"erased-{user.pk}@erased.invalid",
        display_name=f"@former-member-{user.pk}",
        password=make_password(None),  # unusable: no sign-in, every old session invalid
        is_active=False,
        is_staff=False,
        is_superuser=False,
        time_zone="UTC",
        last_login=None,
    )


def _delete_account(user: User) -> None:
    """The last step: reports others made about one of the member's messages stay theirs
    (their target is the message); the rest about the member goes with the row."""
    from groups.models import Message
    from moderation.models import Report

    Report.objects.filter(reported_member=user, message__isnull=False).update(reported_member=None)
    Message.objects.filter(author=user).update(author=None)
    User.objects.filter(pk=user.pk).delete()


# --- Erasure: the service ---------------------------------------------------------------------


def erase_account(user: User, *, password, keep_messages: bool) -> bool:
    """Erase ``user``'s account after they re-entered their password. Returns True when
    nothing of it is left, False when open moderation items keep a little until they close.

    A wrong password (or a choice that isn't one) changes nothing. The caller signs the
    request's browser out afterwards; every other session and socket is ended here.
    """
    if not isinstance(keep_messages, bool):
        raise DomainError(
            _("Please choose what happens to your messages."), code="messages_choice_required"
        )
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(_("Please sign in to delete your account."), code="not_signed_in")
    if not isinstance(password, str) or not password or not user.check_password(password):
        raise PermissionDenied(
            _("That password isn't right, so nothing was deleted. Please try again."),
            code="wrong_password",
        )
    user_id = user.pk
    with transaction.atomic():
        # One erasure at a time (a double click waits, then finds nothing left to do).
        user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None:
            raise PermissionDenied(
                _("This account has already been deleted."), code="already_erased"
            )
        _release_claims(user)
        _end_connections(user)
        _erase_practice_space(user)
        kept = _leave_groups(user, keep_messages=keep_messages)
        _delete_personal_rows(user)
        if _open_items(user, kept).exists():
            AccountErasure.objects.create(user=user, kept_message_ids=kept)
            _scrub(user)
            _finish(AccountErasure.objects.select_related("user").get(user=user))
            gone = False
        else:
            _delete_account(user)
            gone = True
    logger.info(
        "account %s erased (%s, messages %s)",
        user_id,
        "completely" if gone else "pending moderation",
        "kept" if keep_messages else "erased",
    )
    return gone


def _finish(erasure: AccountErasure) -> bool:
    """Clear what closed items no longer need; delete the account if nothing is open.

    Precondition: inside a transaction holding the erasure's row lock.
    """
    from groups.models import Message
    from moderation.models import Appeal, ItemStatus, QueueItem, Report

    user = erasure.user
    kept = set(erasure.kept_message_ids or [])
    still_needed = _open_message_ids(kept)
    done = kept - still_needed
    if done:
        Message.objects.filter(pk__in=done).update(body="", content_warning="", topics=[])
        AccountErasure.objects.filter(pk=erasure.pk).update(kept_message_ids=sorted(still_needed))
    open_items = QueueItem.objects.exclude(status=ItemStatus.CLOSED)
    Report.objects.filter(reporter=user).exclude(
        pk__in=open_items.filter(report__isnull=False).values("report_id")
    ).exclude(details="").update(details="")
    Appeal.objects.filter(member=user).exclude(
        pk__in=open_items.filter(appeal__isnull=False).values("appeal_id")
    ).exclude(text="").update(text="")
    # Moderation may have told them meanwhile (in-app only: the account is inactive).
    Notification.objects.filter(user=user).delete()
    if _open_items(user, still_needed).exists():
        return False
    _delete_account(user)
    logger.info("erasure of account %s finished", user.pk)
    return True


def finish_erasures(*, now=None) -> int:
    """Move every pending erasure on (after moderation closed items). Returns how many
    accounts were deleted. Safe to run twice, and at the same time (row locks)."""
    finished = 0
    for erasure_id in list(AccountErasure.objects.values_list("pk", flat=True)):
        with transaction.atomic():
            erasure = (
                AccountErasure.objects.select_for_update(of=("self",))
                .select_related("user")
                .filter(pk=erasure_id)
                .first()
            )
            if erasure is not None and _finish(erasure):
                finished += 1
    return finished


def finish_erasures_after_commit() -> None:
    """For moderation's close path: once this transaction commits, move pending erasures on.

    Precondition: inside the transaction that closed an item. Cheap when nobody is waiting.
    """
    if AccountErasure.objects.exists():
        transaction.on_commit(finish_erasures, robust=True)
