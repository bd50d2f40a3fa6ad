"""Opening a practice space, clearing its history, and what an account's erasure does to it.

A practice space's room is a ``groups.Group`` of kind ``practice``: unlisted, one seat, a fixed
agreement the member accepts by opening it, and the member as its only member. So the room
socket, its ``seq`` and resume, presence and "I need help now" work there unchanged.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.models import User
from companion import engine
from companion.models import PracticeSpace, ReplySource
from companion.services.replies import store_companion_message
from groups.models import (
    Group,
    GroupKind,
    Membership,
    MembershipStatus,
    Message,
)
from groups.services import create_private_room, erase_message, lock_room

__all__ = [
    "PRACTICE_AGREEMENT",
    "PRACTICE_ROOM_NAME",
    "clear_practice_space",
    "erase_practice_space_for_account",
    "open_practice_space",
]

logger = logging.getLogger(__name__)

# Stored, and shown only to moderators in a crisis item the member agreed to: never a name.
PRACTICE_ROOM_NAME = "Practice space"
PRACTICE_AGREEMENT = (
    "This space is yours alone. The companion here is a program, not a person. Nobody else "
    "reads what you write, unless you say yes when it asks whether it may let a moderator "
    "know you might need support. You can clear this space at any time."
)


def _check_self(user, actor) -> None:
    if actor is None or actor.pk != user.pk or not user.is_active:
        raise PermissionDenied(
            _("Only you can open or clear your practice space."), code="not_yours"
        )


def open_practice_space(user, *, actor) -> PracticeSpace:
    """The member's practice space, opened now if it isn't yet (with the companion's greeting
    as its first message). Opening it twice, or at once from two tabs, gives the same one."""
    _check_self(user, actor)
    existing = PracticeSpace.objects.filter(user=user).select_related("room").first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            # Serialise two tabs opening it at once; the one-space-per-member constraint is
            # the backstop.
            User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()
            existing = PracticeSpace.objects.filter(user=user).select_related("room").first()
            if existing is not None:
                return existing
            return _open(user)
    except IntegrityError:
        return PracticeSpace.objects.select_related("room").get(user=user)


def _open(user) -> PracticeSpace:
    now = timezone.now()
    room = create_private_room(
        kind=GroupKind.PRACTICE,
        name=PRACTICE_ROOM_NAME,
        agreement=PRACTICE_AGREEMENT,
        members=(user,),
        now=now,
    )
    space = PracticeSpace.objects.create(user=user, room=room, created_at=now)
    lock_room(room.pk)
    greeting = engine.greet(name=user.display_name)
    store_companion_message(
        space, text=greeting.text, source=ReplySource.BUILT_IN, now=now, intent=greeting.intent
    )
    PracticeSpace.objects.filter(pk=space.pk).update(turns=1)
    space.turns = 1
    logger.info("practice space %s opened", space.pk)
    return space


def _open_item_message_ids(room_id: int) -> set[int]:
    from moderation.models import ItemStatus, QueueItem

    return set(
        QueueItem.objects.filter(group_id=room_id)
        .exclude(status=ItemStatus.CLOSED)
        .values_list("message_id", flat=True)
    )


def _moderation_touched(room_id: int) -> bool:
    from moderation.models import ModerationAction, QueueItem, Report

    return (
        QueueItem.objects.filter(group_id=room_id).exists()
        or ModerationAction.objects.filter(group_id=room_id).exists()
        or Report.objects.filter(group_id=room_id).exists()
    )


def _retire_room(space: PracticeSpace, *, keep_message_ids=frozenset()) -> None:
    """Remove a practice room's words. Precondition: inside a transaction holding
    ``lock_room(space.room_id)``.

    A room moderation never touched is deleted outright (its messages, membership and the
    space go with it). One that moderation did touch (a crisis item the member agreed to) keeps
    its rows, so the moderators' history still adds up, but every word in it is erased except
    those an open item still needs (``keep_message_ids``); the room is archived and the member
    leaves it.
    """
    room_id = space.room_id
    if not _moderation_touched(room_id):
        Group.objects.filter(pk=room_id).delete()
        return
    for message in Message.objects.filter(group_id=room_id, deleted_at__isnull=True).exclude(
        pk__in=keep_message_ids
    ):
        erase_message(message)
    now = timezone.now()
    Group.objects.filter(pk=room_id, archived_at__isnull=True).update(archived_at=now)
    Membership.objects.filter(group_id=room_id, status=MembershipStatus.ACTIVE).update(
        status=MembershipStatus.LEFT, left_at=now
    )
    PracticeSpace.objects.filter(pk=space.pk).delete()


@transaction.atomic
def clear_practice_space(user, *, actor) -> bool:
    """Delete the member's practice history: the conversation, the flow it was in, and the
    rehearsed share. Next time they come, the space starts fresh. False if there was none.

    Refused while a moderator is still looking at something from it (a crisis item the member
    agreed to): its words stay until the item closes, as everywhere on the site.
    """
    _check_self(user, actor)
    space = PracticeSpace.objects.filter(user=user).first()
    if space is None:
        return False
    lock_room(space.room_id)
    if _open_item_message_ids(space.room_id):
        raise DomainError(
            _(
                "A moderator is still looking at something from your practice space, so it "
                "stays until they've finished. You'll be able to clear it after that."
            ),
            code="practice_in_review",
        )
    _retire_room(space)
    logger.info("practice space %s cleared", space.pk)
    return True


def erase_practice_space_for_account(user) -> None:
    """For an account's erasure (``community.services.data.erase_account``): the practice room
    goes, whatever the member chose for their group messages (nobody else ever read it). Words
    an open moderation item still needs stay, as the erasure keeps them everywhere: the
    erasure's own message settling finds them as the member's messages there.

    Precondition: inside the erasure's transaction.
    """
    for space in PracticeSpace.objects.filter(user=user).order_by("room_id"):
        lock_room(space.room_id)
        _retire_room(space, keep_message_ids=_open_item_message_ids(space.room_id))
