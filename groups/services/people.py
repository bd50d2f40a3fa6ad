"""Muting and blocking: a member's own quiet choices about someone else.

A mute folds that person's messages for the member alone ("a message from someone you
muted", opened on a tap). A block is a mute plus distance: no safe-person invitations either
way, no one-to-one room (a live safe-person connection ends), and the blocked person no longer
sees the member's presence. Neither is ever shown to the person muted or blocked: nothing they
load or receive changes except that presence, and what they see then is what they would see
had the member hidden their presence or left.

These live in ``groups`` (not ``community``, where the models are) because who may be muted is
"someone you share a circle with, or once did, or a safe person", and blocking ends safe-person
connections: both are groups' facts, and ``community`` does not import ``groups``.

Every change tells the sockets of both people (``people.changed``, with nothing in it) so their
rooms re-read whom they fold and whose presence they leave out.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError
from community.models import Block, Mute, User
from community.realtime import PEOPLE_CHANGED, send_event_on_commit, user_channel_group
from groups.models import InviteStatus, SafePersonInvite
from groups.selectors.people import shares_a_circle_or_connection
from groups.services.connections import end_safe_connection_with

__all__ = ["block_member", "mute_member", "unblock_member", "unmute_member"]

logger = logging.getLogger(__name__)


def _check_person(user, other) -> None:
    """Refuse (changing nothing) anything but another member the user may mute or block."""
    if not isinstance(other, User) or other.pk is None:
        raise DomainError(
            _("We couldn't tell who you meant. Please choose someone from the list."),
            code="bad_person",
        )
    if other.pk == user.pk:
        raise DomainError(
            _("That's you. Muting and blocking are for other people."), code="self_person"
        )


def _check_may_reach(user, other) -> None:
    if not shares_a_circle_or_connection(user.pk, other.pk):
        raise DomainError(
            _(
                "You can mute or block people you share a circle with (or once did), and your "
                "safe persons. Nothing was changed."
            ),
            code="not_known",
        )


def _tell_sockets(user, other) -> None:
    """Both people's room sockets re-read their mutes and blocks. The event is the same for
    both and empty, so the other person's socket learns nothing it could pass on."""
    for person in (user, other):
        send_event_on_commit(user_channel_group(person.pk), {"type": PEOPLE_CHANGED})


@transaction.atomic
def mute_member(user, *, other) -> bool:
    """``user`` mutes ``other``: their messages arrive folded for ``user`` alone.

    Preconditions checked here (a refusal changes nothing): ``other`` is someone else whom
    ``user`` shares or shared a circle with, or a safe person. Muting someone already muted
    changes nothing and returns False (True when this made the mute).
    """
    _check_person(user, other)
    _check_may_reach(user, other)
    _mute, created = Mute.objects.get_or_create(user=user, muted=other)
    if created:
        _tell_sockets(user, other)
        logger.info("Mute made: user=%s", user.pk)  # whom is theirs alone
    return created


@transaction.atomic
def unmute_member(user, *, other) -> bool:
    """``user`` takes back a mute. False (nothing changed) if there was none. Anyone may be
    unmuted, shared circle or not: a member can always undo their own choice."""
    _check_person(user, other)
    removed, _rows = Mute.objects.filter(user=user, muted=other).delete()
    if removed:
        _tell_sockets(user, other)
        logger.info("Mute removed: user=%s", user.pk)
    return bool(removed)


@transaction.atomic
def block_member(user, *, other) -> bool:
    """``user`` blocks ``other``: a mute, no safe-person invitations either way, no one-to-one
    contact, and ``other`` stops seeing ``user``'s presence. False if already blocked (nothing
    changed then).

    Open invitations between the two close without a word to ``other``: ``user``'s to them is
    withdrawn (as if taken back), and theirs to ``user`` is declined, which to its sender reads
    exactly as before ("not accepted yet") until it lapses. A live safe-person connection ends;
    ``other`` sees only that it ended, as when either ends one. Same preconditions as
    ``mute_member``.
    """
    _check_person(user, other)
    _check_may_reach(user, other)
    _block, created = Block.objects.get_or_create(user=user, blocked=other)
    if not created:
        return False
    now = timezone.now()
    SafePersonInvite.objects.filter(
        inviter=user,
        invitee=other,
        status__in=[InviteStatus.PENDING, InviteStatus.DECLINED],
    ).update(status=InviteStatus.WITHDRAWN, answered_at=now)
    SafePersonInvite.objects.filter(
        inviter=other, invitee=user, status=InviteStatus.PENDING
    ).update(status=InviteStatus.DECLINED, answered_at=now)
    end_safe_connection_with(user, other=other, actor=user)
    _tell_sockets(user, other)
    logger.info("Block made: user=%s", user.pk)
    return True


@transaction.atomic
def unblock_member(user, *, other) -> bool:
    """``user`` takes back a block. False (nothing changed) if there was none. A connection
    the block ended stays ended; a separate mute, if ``user`` made one, stays."""
    _check_person(user, other)
    removed, _rows = Block.objects.filter(user=user, blocked=other).delete()
    if removed:
        _tell_sockets(user, other)
        logger.info("Block removed: user=%s", user.pk)
    return bool(removed)
