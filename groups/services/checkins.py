"""Writes for check-ins ("how present do you feel right now?"): recording one, saying "not
today" to the offer, and deleting one.

Where a check-in goes is the member's choice (``CheckInAudience``): private (only their own
history), the group (a small card in the room: a ``checkin`` message posted through
``post_message``, so it gets a ``seq``, screening, reactions and the room's delivery
guarantees), or the group's facilitators only (listed for them, with an in-app notification
that carries no note). Either way the offer counts as answered for the member's local day.

Notes are never logged.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import NotificationKind, User
from community.services import notify
from groups.models import (
    CHECK_IN_MAX_FEELINGS,
    CHECK_IN_NOTE_MAX_CHARS,
    CheckIn,
    CheckInAudience,
    Feeling,
    Group,
    Membership,
    MembershipStatus,
    Message,
    MessageKind,
    Presence,
    Role,
    RoomPreference,
)
from groups.selectors.checkins import local_date
from groups.services.chat import erase_message, lock_room, post_message

__all__ = [
    "delete_check_in",
    "record_check_in",
    "skip_check_in_offer",
]

logger = logging.getLogger(__name__)


# --- Rules ------------------------------------------------------------------------------------


def _clean_presence(presence) -> int:
    if (
        isinstance(presence, bool)
        or not isinstance(presence, int)
        or presence not in Presence.values
    ):
        raise DomainError(
            _("Please choose how present you feel on the scale, from “far away” to “fully here”."),
            code="bad_presence",
            field="presence",
        )
    return presence


def _clean_feelings(feelings) -> list[str]:
    if feelings is None:
        return []
    if isinstance(feelings, str) or not isinstance(feelings, list | tuple):
        raise DomainError(
            _("Feeling words are chosen from the list."), code="bad_feelings", field="feelings"
        )
    chosen: list[str] = []
    for word in feelings:
        if not isinstance(word, str) or word not in Feeling.values:
            raise DomainError(
                _("That isn't one of the feeling words here. Please choose from the list."),
                code="unknown_feeling",
                field="feelings",
            )
        if word not in chosen:
            chosen.append(word)
    if len(chosen) > CHECK_IN_MAX_FEELINGS:
        raise DomainError(
            _("Up to %(max)s feeling words, please: whichever feel closest right now.")
            % {"max": CHECK_IN_MAX_FEELINGS},
            code="too_many_feelings",
            field="feelings",
        )
    return chosen


def _is_text(value) -> bool:
    """Text the database can keep: a string with no NUL and no lone surrogates."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_note(note) -> str:
    if note is None:
        return ""
    if not _is_text(note):
        raise DomainError(
            _("The note needs to be a few words of text."), code="bad_note", field="note"
        )
    note = " ".join(note.split())  # one line
    if len(note) > CHECK_IN_NOTE_MAX_CHARS:
        raise DomainError(
            _("Please keep the note to one short line (up to %(max)s characters).")
            % {"max": CHECK_IN_NOTE_MAX_CHARS},
            code="note_too_long",
            field="note",
        )
    return note


def _clean_audience(audience) -> str:
    if not isinstance(audience, str) or audience not in CheckInAudience.values:
        raise DomainError(
            _("Please choose who sees this check-in: just you, the group, or your facilitators."),
            code="bad_audience",
            field="audience",
        )
    return audience


def _active_membership(group: Group, user) -> Membership:
    membership = (
        Membership.objects.filter(
            group=group, user=user, status=MembershipStatus.ACTIVE, user__is_active=True
        )
        .select_related("group")
        .first()
    )
    if membership is None:
        raise PermissionDenied(
            _("Check-ins can be shared in groups you belong to."), code="not_member"
        )
    return membership


def _mark_answered(user, *, now) -> None:
    """Remember the member's local today as answered, so the offer isn't made again."""
    today = local_date(user, now=now)
    preference, created = RoomPreference.objects.get_or_create(
        user=user, defaults={"check_in_offered_on": today}
    )
    if not created and preference.check_in_offered_on != today:
        RoomPreference.objects.filter(pk=preference.pk).update(check_in_offered_on=today)


def _notify_facilitators(check_in: CheckIn, group: Group, user) -> None:
    """In-app (and email if they chose it) to each active facilitator but the author.

    The title names the member; the note stays on the facilitators' page, never in a
    notification or an email.
    """
    facilitators = User.objects.filter(
        memberships__group=group,
        memberships__role=Role.FACILITATOR,
        memberships__status=MembershipStatus.ACTIVE,
        is_active=True,
    ).exclude(pk=user.pk)
    url = reverse("groups:shared_check_ins", kwargs={"slug": group.slug})
    for facilitator in facilitators:
        notify(
            facilitator,
            kind=NotificationKind.CHECK_IN_SHARED,
            title=_("%(name)s shared a check-in with you") % {"name": user.display_name},
            body=_("In %(group)s. It's on the group's page of check-ins shared with you.")
            % {"group": group.name},
            url=url,
            dedupe_key=f"check_in_shared:{check_in.pk}",
        )


# --- Writes -----------------------------------------------------------------------------------


def record_check_in(
    user,
    *,
    group: Group | None = None,
    presence,
    feelings,
    note="",
    audience,
    client_id=None,
) -> CheckIn | None:
    """Record a check-in where the member chose, and count the day's offer as answered.

    ``group`` is needed to share (with the group or its facilitators) and may be given for
    context to a private one; either way the member must be an active member of it. A group
    check-in is posted as a ``checkin`` message (the note is its body) under ``client_id``:
    sending the same ``client_id`` again stores nothing and returns the first one (None if it
    was since deleted). Raises DomainError, changing nothing, for bad input or a broken rule
    (posting paused, the agreement changed, the group closed…).
    """
    presence = _clean_presence(presence)
    feelings = _clean_feelings(feelings)
    note = _clean_note(note)
    audience = _clean_audience(audience)
    if group is None and audience != CheckInAudience.PRIVATE:
        raise DomainError(
            _("To share a check-in, please do it from the group's room."),
            code="group_required",
            field="audience",
        )
    if group is not None and not isinstance(group, Group):
        raise NotFound(_("We couldn't find that group."), code="group_not_found")
    fields = {
        "user": user,
        "group": group,
        "presence": presence,
        "feelings": feelings,
        "note": note,
        "audience": audience,
    }

    with transaction.atomic():
        if group is not None:
            membership = _active_membership(group, user)
            if audience == CheckInAudience.FACILITATORS and membership.group.is_archived:
                raise DomainError(
                    _("This group has closed, so there's nobody to share this with now."),
                    code="archived",
                )
        now = timezone.now()
        if audience == CheckInAudience.GROUP:
            stored: list[CheckIn] = []

            def hang_on_card(message: Message) -> None:
                fields.update(message=message, created_at=message.created_at)
                stored.append(CheckIn.objects.create(**fields))

            result = post_message(
                group,
                author=user,
                client_id=client_id or uuid.uuid4(),
                body=note,
                kind=MessageKind.CHECK_IN,
                on_store=hang_on_card,
            )
            if not result.created:  # a retry: the first one stands
                return CheckIn.objects.filter(message=result.message, user=user).first()
            check_in = stored[0]
        else:
            check_in = CheckIn.objects.create(created_at=now, **fields)
            if audience == CheckInAudience.FACILITATORS:
                _notify_facilitators(check_in, group, user)
        _mark_answered(user, now=now)
    logger.info("Check-in %s recorded: audience=%s", check_in.pk, audience)
    return check_in


def skip_check_in_offer(user, *, now=None):
    """ "Not today": don't offer the check-in again until the member's next local day.

    Returns the local date now counted as answered.
    """
    now = now or timezone.now()
    _mark_answered(user, now=now)
    return local_date(user, now=now)


def delete_check_in(check_in_id, *, user) -> None:
    """Delete one of the member's own check-ins. A group one's card leaves the room too: its
    words are erased and the room gets an ``update`` (deleted), as when a message is deleted.

    Allowed whatever the member's standing in the group now (left, muted, group closed):
    people may always take back what they shared. Someone else's check-in, or one already
    gone, is NotFound (nobody learns that it exists).
    """
    if isinstance(check_in_id, bool) or not isinstance(check_in_id, int):
        raise NotFound(_("We couldn't find that check-in."), code="check_in_not_found")
    check_in = CheckIn.objects.filter(pk=check_in_id, user=user).values("pk", "message_id").first()
    if check_in is None:
        raise NotFound(_("We couldn't find that check-in."), code="check_in_not_found")
    with transaction.atomic():
        message = None
        if check_in["message_id"] is not None:
            message = Message.objects.filter(pk=check_in["message_id"]).first()
        if message is not None:
            # The room's lock first, as every writer of messages takes it (no deadlocks).
            lock_room(message.group_id)
            message = Message.objects.select_related("author").get(pk=message.pk)
            erase_message(message)
        deleted, _detail = CheckIn.objects.filter(pk=check_in["pk"], user=user).delete()
        if not deleted:
            raise NotFound(_("We couldn't find that check-in."), code="check_in_not_found")
    logger.info("Check-in %s deleted", check_in_id)
