"""Safe persons: invitations, connections and their private pair room, availability, status.

One-to-one contact exists only between two members who both chose it. An invitation
(``SafePersonInvite``) goes to someone the inviter shares a circle with; accepting it creates a
``SafeConnection`` whose ``room`` is a new ``Group`` of kind ``pair`` with exactly the two as
members, so the room machinery (``groups.services.chat``, the socket, moderation) works
unchanged. Ending a connection archives that room: both can still read it, nobody can post.

What the inviter learns is deliberately little: a declined invitation looks exactly like one
not answered yet (it still counts toward the pending cap, and can't be sent again) until it
expires. Refusals because of a block never say which side blocked.

Races: accepting locks every open invitation between the two people in id order, so two
acceptances (of the same invitation, or of two crossing ones) are serialised and make one
connection; the ``safe_connection_one_live`` constraint backs this up.
"""

from __future__ import annotations

import logging
from datetime import time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import NotificationKind, User
from community.selectors import blocked_either_way
from community.services.notifications import notify
from groups.models import (
    INVITE_DAYS,
    INVITE_NOTE_MAX_CHARS,
    MAX_PENDING_INVITES,
    STATUS_MAX_CHARS,
    AvailabilityWindow,
    Group,
    GroupKind,
    InviteStatus,
    MembershipStatus,
    SafeConnection,
    SafePersonInvite,
    SafeStatus,
)
from groups.services.chat import lock_room
from groups.services.private_rooms import create_private_room

__all__ = [
    "MAX_AVAILABILITY_WINDOWS",
    "PAIR_AGREEMENT",
    "PAIR_ROOM_NAME",
    "STATUS_HOURS",
    "accept_safe_person_invite",
    "clear_safe_status",
    "decline_safe_person_invite",
    "end_safe_connection",
    "end_safe_connection_with",
    "expire_safe_person_invites",
    "invite_safe_person",
    "set_availability",
    "set_safe_status",
    "withdraw_safe_person_invite",
]

logger = logging.getLogger(__name__)

# How long a status may last: an hour, four hours, until this time tomorrow, three days.
STATUS_HOURS = (1, 4, 24, 72)
MAX_AVAILABILITY_WINDOWS = 7
# Stored, never shown as a title: each person sees "You and <name>" instead.
PAIR_ROOM_NAME = "Safe-person conversation"
PAIR_AGREEMENT = (
    "This space is just for the two of you. Be kind, take your time, and remember that "
    "neither of you has to reply straight away. Either of you can end the connection at any "
    "time; the other will only see that it ended. Moderators can see reported or flagged "
    "messages here, as everywhere on the site."
)


def _cant_invite() -> PermissionDenied:
    """One wording for every refusal that might otherwise reveal a block, or who made it."""
    return PermissionDenied(_("You can't invite this person right now."), code="cannot_invite")


def _invite_not_found() -> NotFound:
    return NotFound(
        _("We couldn't find that invitation. It may have been withdrawn."),
        code="invite_not_found",
    )


def _ordered(a_id: int, b_id: int) -> tuple[int, int]:
    return (a_id, b_id) if a_id < b_id else (b_id, a_id)


def _live_connection(a_id: int, b_id: int):
    low, high = _ordered(a_id, b_id)
    return SafeConnection.objects.filter(user_low_id=low, user_high_id=high, ended_at__isnull=True)


def _shared_circle(a, b) -> Group | None:
    """A live circle both belong to now (the invitation's "via"), or None."""
    return (
        Group.objects.filter(
            kind=GroupKind.CIRCLE,
            archived_at__isnull=True,
            memberships__user=a,
            memberships__status=MembershipStatus.ACTIVE,
        )
        .filter(memberships__user=b, memberships__status=MembershipStatus.ACTIVE)
        .order_by("pk")
        .first()
    )


def _open_from_inviters_view(now):
    """Invitations the inviter still sees as "not accepted yet": pending or declined, and not
    past their expiry. A decline must not free a place or allow a second invitation, or the
    inviter could tell it apart from silence."""
    return Q(status__in=[InviteStatus.PENDING, InviteStatus.DECLINED], expires_at__gt=now)


def _clean_note(note) -> str:
    note = " ".join((note or "").split())
    if "\x00" in note or len(note) > INVITE_NOTE_MAX_CHARS:
        raise DomainError(
            _("Please keep the note to %(max)d characters of text.")
            % {"max": INVITE_NOTE_MAX_CHARS},
            code="bad_note",
        )
    return note


# --- Invitations ----------------------------------------------------------------------------


@transaction.atomic
def invite_safe_person(inviter, *, invitee, note: str = "") -> SafePersonInvite:
    """Invite ``invitee`` to be ``inviter``'s safe person. Nothing else happens until they
    accept. Preconditions checked here: not oneself, a circle shared now, no block either way,
    not already connected or invited, and under the cap of open invitations."""
    note = _clean_note(note)
    if invitee.pk == inviter.pk:
        raise DomainError(
            _("A safe person is someone else, so you can't invite yourself."), code="self_invite"
        )
    # Lock the inviter's row: two invitations sent at once can't both slip under the cap.
    User.objects.select_for_update().filter(pk=inviter.pk).get()
    via = _shared_circle(inviter, invitee)
    if via is None:
        raise DomainError(
            _(
                "You can invite people you share a circle with. Once you're in a circle "
                "together, you can ask them here."
            ),
            code="no_shared_circle",
        )
    if not invitee.is_active or blocked_either_way(inviter.pk, invitee.pk):
        raise _cant_invite()
    if _live_connection(inviter.pk, invitee.pk).exists():
        raise DomainError(
            _("You're already safe persons for each other."), code="already_connected"
        )
    now = timezone.now()
    open_sent = SafePersonInvite.objects.filter(_open_from_inviters_view(now), inviter=inviter)
    if open_sent.filter(invitee=invitee).exists():
        raise DomainError(
            _("You've already invited them. It's waiting for them, with no rush."),
            code="already_invited",
        )
    if open_sent.count() >= MAX_PENDING_INVITES:
        raise DomainError(
            _(
                "You have %(max)d invitations waiting already. You could withdraw one, or "
                "give them time; each lapses after %(days)d days."
            )
            % {"max": MAX_PENDING_INVITES, "days": INVITE_DAYS},
            code="too_many_invites",
        )
    # One past its expiry that the beat hasn't marked yet would trip the one-pending
    # constraint: it lapsed, so it is marked so now and a fresh invitation may follow.
    SafePersonInvite.objects.filter(
        inviter=inviter, invitee=invitee, status=InviteStatus.PENDING, expires_at__lte=now
    ).update(status=InviteStatus.EXPIRED)
    invite = SafePersonInvite.objects.create(
        inviter=inviter,
        invitee=invitee,
        via_group=via,
        note=note,
        created_at=now,
        expires_at=now + timedelta(days=INVITE_DAYS),
    )
    notify(
        invitee,
        kind=NotificationKind.SAFE_PERSON,
        title=_("%(name)s would like you as a safe person") % {"name": inviter.display_name},
        body=_(
            "There's no rush and no need to explain. If you'd rather not, the invitation simply "
            "lapses; they won't be told you declined."
        ),
        url=reverse("groups:safe_persons"),
        dedupe_key=f"safe-invite:{invite.pk}",
    )
    logger.info("safe-person invite %s sent", invite.pk)
    return invite


def _invite_for(invite_id: int, *, user, as_invitee: bool) -> SafePersonInvite:
    """The invitation, locked, if ``user`` is its invitee (or inviter); NotFound otherwise,
    the same answer whether it exists or belongs to someone else."""
    side = {"invitee": user} if as_invitee else {"inviter": user}
    invite = (
        SafePersonInvite.objects.select_for_update()
        .select_related("inviter", "invitee")
        .filter(pk=invite_id, **side)
        .first()
    )
    if invite is None:
        raise _invite_not_found()
    return invite


def _check_answerable(invite: SafePersonInvite, *, now) -> None:
    if invite.status == InviteStatus.WITHDRAWN:
        raise DomainError(
            _("This invitation was withdrawn, so there's nothing to answer."),
            code="invite_withdrawn",
        )
    if invite.status == InviteStatus.EXPIRED or (
        invite.status == InviteStatus.PENDING and invite.expires_at <= now
    ):
        raise DomainError(
            _(
                "This invitation has lapsed. If you'd still like to connect, you're welcome to "
                "invite them yourself."
            ),
            code="invite_expired",
        )
    if invite.status != InviteStatus.PENDING:
        raise DomainError(_("You've already answered this invitation."), code="invite_answered")


def accept_safe_person_invite(invite_id: int, *, user) -> SafeConnection:
    """Accept an invitation addressed to ``user``: the two become safe persons, with their own
    room. Every other open invitation between the two (a crossing one) is settled with it."""
    try:
        with transaction.atomic():
            return _accept(invite_id, user=user)
    except IntegrityError:
        # The one-live-connection constraint: a concurrent acceptance got there first.
        raise DomainError(
            _("You're already safe persons for each other."), code="already_connected"
        ) from None


def _accept(invite_id: int, *, user) -> SafeConnection:
    own = SafePersonInvite.objects.filter(pk=invite_id, invitee=user).first()
    if own is None:
        raise _invite_not_found()
    pair = Q(inviter_id=own.inviter_id, invitee_id=user.pk) | Q(
        inviter_id=user.pk, invitee_id=own.inviter_id
    )
    # Lock every open invitation between the two in id order, so accepting this one and a
    # crossing one at the same moment queue behind each other instead of both connecting.
    list(
        SafePersonInvite.objects.select_for_update()
        .filter(pair, status=InviteStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    invite = _invite_for(invite_id, user=user, as_invitee=True)
    now = timezone.now()
    _check_answerable(invite, now=now)
    inviter = invite.inviter
    if not inviter.is_active or blocked_either_way(inviter.pk, user.pk):
        raise PermissionDenied(
            _("This invitation can't be accepted right now."), code="cannot_accept"
        )
    if _live_connection(inviter.pk, user.pk).exists():
        raise DomainError(
            _("You're already safe persons for each other."), code="already_connected"
        )
    low, high = sorted((inviter, user), key=lambda u: u.pk)
    room = create_private_room(
        kind=GroupKind.PAIR,
        name=PAIR_ROOM_NAME,
        agreement=PAIR_AGREEMENT,
        members=(low, high),
        now=now,
    )
    connection = SafeConnection.objects.create(
        user_low=low, user_high=high, room=room, created_at=now
    )
    SafePersonInvite.objects.filter(pair, status=InviteStatus.PENDING).update(
        status=InviteStatus.ACCEPTED, answered_at=now
    )
    notify(
        inviter,
        kind=NotificationKind.SAFE_PERSON,
        title=_("%(name)s accepted: you're safe persons now") % {"name": user.display_name},
        body=_("You have a private space for the two of you, whenever you'd like it."),
        url=reverse("groups:safe_persons"),
        dedupe_key=f"safe-connected:{connection.pk}:{inviter.pk}",
    )
    logger.info("safe connection %s made from invite %s", connection.pk, invite.pk)
    return connection


@transaction.atomic
def decline_safe_person_invite(invite_id: int, *, user) -> SafePersonInvite:
    """Decline quietly: the inviter is not told, and keeps seeing "not accepted yet" until the
    invitation would have lapsed."""
    invite = _invite_for(invite_id, user=user, as_invitee=True)
    now = timezone.now()
    _check_answerable(invite, now=now)
    SafePersonInvite.objects.filter(pk=invite.pk, status=InviteStatus.PENDING).update(
        status=InviteStatus.DECLINED, answered_at=now
    )
    invite.refresh_from_db(fields=["status", "answered_at"])
    return invite


@transaction.atomic
def withdraw_safe_person_invite(invite_id: int, *, user) -> SafePersonInvite:
    """The inviter takes back an invitation that hasn't been accepted (a quietly declined one
    too: to the inviter it looks the same)."""
    invite = _invite_for(invite_id, user=user, as_invitee=False)
    now = timezone.now()
    updated = SafePersonInvite.objects.filter(_open_from_inviters_view(now), pk=invite.pk).update(
        status=InviteStatus.WITHDRAWN, answered_at=now
    )
    if updated != 1:
        raise DomainError(
            _("This invitation isn't waiting any more, so there's nothing to withdraw."),
            code="invite_not_open",
        )
    invite.refresh_from_db(fields=["status", "answered_at"])
    return invite


def expire_safe_person_invites(*, now=None) -> int:
    """Mark invitations past their 14 days as expired (pending ones, and declined ones, which
    the inviter only ever saw as waiting). Safe to run twice."""
    now = now or timezone.now()
    lapsed = SafePersonInvite.objects.filter(
        status__in=[InviteStatus.PENDING, InviteStatus.DECLINED], expires_at__lte=now
    ).update(status=InviteStatus.EXPIRED)
    return lapsed


# --- Connections ----------------------------------------------------------------------------


def _end(connection: SafeConnection, *, now) -> bool:
    """End a connection and close its room, under the room's lock so no message is stored after
    it ends. Precondition: inside ``transaction.atomic``. False if it had already ended."""
    lock_room(connection.room_id)
    ended = SafeConnection.objects.filter(pk=connection.pk, ended_at__isnull=True).update(
        ended_at=now
    )
    if ended != 1:
        return False
    Group.objects.filter(pk=connection.room_id, archived_at__isnull=True).update(archived_at=now)
    logger.info("safe connection %s ended", connection.pk)
    return True


@transaction.atomic
def end_safe_connection(connection_id: int, *, actor) -> SafeConnection:
    """Either person ends the connection, at any time, with no reason asked. Their room closes
    for both (kept, read-only); the other sees only that it ended."""
    connection = (
        SafeConnection.objects.filter(pk=connection_id)
        .filter(Q(user_low=actor) | Q(user_high=actor))
        .first()
    )
    if connection is None:
        raise NotFound(_("We couldn't find that connection."), code="connection_not_found")
    if not _end(connection, now=timezone.now()):
        raise DomainError(_("This connection has already ended."), code="already_ended")
    connection.refresh_from_db(fields=["ended_at"])
    return connection


@transaction.atomic
def end_safe_connection_with(user, *, other, actor) -> SafeConnection | None:
    """End the live connection between ``user`` and ``other``, if there is one (for example
    when one blocks the other). Returns the ended connection, or None when there was none."""
    if actor.pk not in (user.pk, other.pk) and not actor.is_staff:
        raise PermissionDenied(
            _("Only the two people in a connection can end it."), code="not_yours"
        )
    connection = _live_connection(user.pk, other.pk).first()
    if connection is None or not _end(connection, now=timezone.now()):
        return None
    connection.refresh_from_db(fields=["ended_at"])
    return connection


# --- Availability and status ----------------------------------------------------------------


def _clean_window(window) -> tuple[list[int], time, time]:
    try:
        days, start, end = window["days"], window["start"], window["end"]
    except (KeyError, TypeError):
        raise DomainError(
            _("Each time needs its days, a start and an end."), code="bad_window"
        ) from None
    if (
        not isinstance(days, list | tuple | set)
        or not days
        or any(isinstance(d, bool) or d not in range(7) for d in days)
    ):
        raise DomainError(_("Please choose at least one day."), code="bad_days")
    if not isinstance(start, time) or not isinstance(end, time):
        raise DomainError(_("Please give a start and an end time."), code="bad_times")
    if start == end:
        raise DomainError(
            _(
                "The start and end can't be the same time. An end earlier than the start runs past midnight."
            ),
            code="empty_window",
        )
    return (
        sorted(set(days)),
        start.replace(second=0, microsecond=0),
        end.replace(second=0, microsecond=0),
    )


@transaction.atomic
def set_availability(user, *, windows) -> list[AvailabilityWindow]:
    """Replace ``user``'s availability with ``windows``: a list of ``{"days": [0..6] (0 is
    Monday), "start": time, "end": time}`` on their own wall clock. An end before the start
    runs past midnight. An empty list clears it."""
    cleaned = [_clean_window(w) for w in windows]
    if len(cleaned) > MAX_AVAILABILITY_WINDOWS:
        raise DomainError(
            _("Up to %(max)d times is plenty; could you combine a few?")
            % {"max": MAX_AVAILABILITY_WINDOWS},
            code="too_many_windows",
        )
    User.objects.select_for_update().filter(pk=user.pk).get()
    AvailabilityWindow.objects.filter(user=user).delete()
    return AvailabilityWindow.objects.bulk_create(
        AvailabilityWindow(user=user, days=days, start=start, end=end)
        for days, start, end in cleaned
    )


@transaction.atomic
def set_safe_status(user, *, text: str, hours: int) -> SafeStatus:
    """A short status for one's safe persons and facilitators ("I feel distant right now").
    It needs no reply and ends by itself after ``hours`` (one of ``STATUS_HOURS``)."""
    text = " ".join((text or "").split()) if isinstance(text, str) else ""
    if not text or "\x00" in text:
        raise DomainError(_("A status needs a few words."), code="empty_status")
    if len(text) > STATUS_MAX_CHARS:
        raise DomainError(
            _("Please keep a status to %(max)d characters.") % {"max": STATUS_MAX_CHARS},
            code="status_too_long",
        )
    if isinstance(hours, bool) or hours not in STATUS_HOURS:
        raise DomainError(_("Please choose how long it should show."), code="bad_hours")
    now = timezone.now()
    status, _created = SafeStatus.objects.update_or_create(
        user=user,
        defaults={"text": text, "set_at": now, "expires_at": now + timedelta(hours=hours)},
    )
    return status


@transaction.atomic
def clear_safe_status(user) -> bool:
    """Take one's status down now. True if there was one."""
    deleted, _detail = SafeStatus.objects.filter(user=user).delete()
    return bool(deleted)
