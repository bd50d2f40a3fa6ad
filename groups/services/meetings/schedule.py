"""Scheduling, changing and cancelling meetings; moving and cancelling one sitting; RSVPs."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from groups.models import (
    Group,
    Location,
    Meeting,
    Membership,
    MembershipStatus,
    Occurrence,
    OccurrenceStatus,
    Recurrence,
    Rsvp,
    RsvpAnswer,
)
from groups.services.meetings.recurrence import _materialise, _planned_starts
from groups.services.meetings.rules import (
    EDITABLE_FIELDS,
    HORIZON,
    SCHEDULE_FIELDS,
    _lock_meeting,
    _on_commit_changed,
    _refuse_unless_manager,
    _validate,
)
from groups.services.reminders import sync_meeting_reminders, sync_occurrence_reminders

logger = logging.getLogger(__name__)

# --- Meetings ---------------------------------------------------------------------------------


@transaction.atomic
def schedule_meeting(
    group: Group,
    *,
    actor,
    title: str,
    starts_at: datetime,
    time_zone: str,
    duration_minutes: int,
    recurrence: str = Recurrence.NONE,
    recurrence_count: int | None = None,
    recurrence_until: date | None = None,
    facilitator_note: str = "",
    location: str = Location.ROOM,
    video_url: str = "",
) -> Meeting:
    """Schedule a meeting and materialise its first occurrences.

    ``starts_at`` is timezone-aware; its wall-clock time in ``time_zone`` is what recurs.
    An endless recurrence (no count, no until) is allowed: rows exist only up to the cap and
    the beat task extends them.
    """
    _refuse_unless_manager(actor, group)
    group = Group.objects.select_for_update().get(pk=group.pk)
    if group.is_archived:
        raise DomainError(
            _("This group is archived, so it can't have new meetings."), code="archived"
        )
    now = timezone.now()
    values = _validate(
        {
            "title": title,
            "starts_at": starts_at,
            "time_zone": time_zone,
            "duration_minutes": duration_minutes,
            "recurrence": recurrence,
            "recurrence_count": recurrence_count,
            "recurrence_until": recurrence_until,
            "facilitator_note": facilitator_note,
            "location": location,
            "video_url": video_url,
        },
        now=now,
        future_start=True,
        near_start=True,
    )
    meeting = Meeting.objects.create(group=group, created_by=actor, created_at=now, **values)
    if not _materialise(meeting, now=now):
        # Defensive: every rule here includes its own first start, but a meeting without a
        # single sitting must never be saved.
        raise DomainError(
            _("That schedule doesn't produce any meeting. Please check the dates."),
            code="no_occurrences",
            field="recurrence_until",
        )
    sync_meeting_reminders(meeting, now=now)
    logger.info("meeting scheduled meeting_id=%s group_id=%s", meeting.pk, group.pk)
    return meeting


@transaction.atomic
def update_meeting(meeting: Meeting, *, actor, **changes) -> Meeting:
    """Change a meeting; schedule changes regenerate its future, un-moved occurrences.

    ``changes`` are any of ``EDITABLE_FIELDS``; the rest keep their values. Occurrences that
    already began are never touched. A future sitting whose ``original_start`` the new schedule
    still produces keeps its row and RSVPs (its length follows the new duration); a moved one
    stays where it was moved to. A sitting the new schedule drops is cancelled (members hear
    about it) if anyone answered it, and simply removed if nobody had.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"update_meeting() got unexpected fields: {sorted(unknown)}")
    meeting = _lock_meeting(meeting)
    _refuse_unless_manager(actor, meeting.group)
    if meeting.group.is_archived:
        raise DomainError(
            _("This group is archived, so its meetings can't change."), code="archived"
        )
    if meeting.cancelled_at is not None:
        raise DomainError(
            _(
                "This meeting series was cancelled, so it can't be changed. You could schedule a new one."
            ),
            code="meeting_cancelled",
        )
    now = timezone.now()
    current = {name: getattr(meeting, name) for name in EDITABLE_FIELDS}
    merged = {**current, **changes}
    start_changed = merged["starts_at"] != current["starts_at"]
    # A series that already began may keep (or change) a first start in the past: only its
    # future sittings are regenerated, and a count still counts from that first start.
    values = _validate(
        merged,
        now=now,
        future_start=start_changed and current["starts_at"] > now,
        near_start=start_changed,
    )
    fields = [name for name in EDITABLE_FIELDS if values[name] != current[name]]
    if not fields:
        return meeting
    for name in fields:
        setattr(meeting, name, values[name])
    meeting.save(update_fields=fields)

    if set(fields) & set(SCHEDULE_FIELDS):
        _regenerate(meeting, actor=actor, now=now)
        sync_meeting_reminders(meeting, now=now)
    logger.info("meeting updated meeting_id=%s fields=%s", meeting.pk, ",".join(fields))
    return meeting


def _regenerate(meeting: Meeting, *, actor, now: datetime) -> None:
    """Bring future, un-moved occurrences in line with the meeting's (new) schedule.

    Precondition: the caller holds the meeting's row lock and saved the new schedule.
    """
    planned = set(_planned_starts(meeting, now=now))
    # Future and un-moved (a moved sitting keeps the place it was moved to).
    future = Occurrence.objects.filter(
        meeting=meeting, starts_at__gt=now, original_start__gt=now, starts_at=F("original_start")
    )
    rows = list(future.values_list("pk", "original_start", "status"))
    answered = set(
        Rsvp.objects.filter(occurrence__in=[pk for pk, _s, _st in rows]).values_list(
            "occurrence_id", flat=True
        )
    )
    kept = [pk for pk, start, _st in rows if start in planned]
    dropped = [pk for pk, start, _st in rows if start not in planned]
    to_cancel = [
        pk
        for pk, start, status in rows
        if start not in planned and pk in answered and status == OccurrenceStatus.SCHEDULED
    ]
    Occurrence.objects.filter(pk__in=kept).update(
        ends_at=F("starts_at") + timedelta(minutes=meeting.duration_minutes)
    )
    # Someone planned around a dropped sitting: cancel it so they hear. Nobody did: remove it.
    Occurrence.objects.filter(pk__in=to_cancel).update(
        status=OccurrenceStatus.CANCELLED, changed_at=now
    )
    for pk in to_cancel:
        _on_commit_changed(pk, "cancelled", actor.pk)
    Occurrence.objects.filter(pk__in=[pk for pk in dropped if pk not in answered]).delete()
    _materialise(meeting, now=now)


@transaction.atomic
def cancel_meeting(meeting: Meeting, *, actor) -> Meeting:
    """Cancel the whole series: every future sitting is cancelled and members hear of each."""
    meeting = _lock_meeting(meeting)
    _refuse_unless_manager(actor, meeting.group)
    if meeting.cancelled_at is not None:
        raise DomainError(_("This meeting series is already cancelled."), code="already_cancelled")
    now = timezone.now()
    meeting.cancelled_at = now
    meeting.save(update_fields=["cancelled_at"])
    future = Occurrence.objects.filter(
        meeting=meeting, status=OccurrenceStatus.SCHEDULED, starts_at__gt=now
    )
    ids = list(future.values_list("pk", flat=True))
    Occurrence.objects.filter(pk__in=ids).update(status=OccurrenceStatus.CANCELLED, changed_at=now)
    for pk in ids:
        _on_commit_changed(pk, "cancelled", actor.pk)
    sync_meeting_reminders(meeting, now=now)
    logger.info("meeting cancelled meeting_id=%s occurrences=%d", meeting.pk, len(ids))
    return meeting


# --- Occurrences ------------------------------------------------------------------------------


def _lock_occurrence(occurrence: Occurrence) -> Occurrence:
    """Re-read the occurrence under a row lock. Precondition: inside ``transaction.atomic``."""
    # of=("self",): only this sitting's row, so answers to one date never queue behind the
    # group's or the meeting's row lock.
    return (
        Occurrence.objects.select_for_update(of=("self",))
        .select_related("meeting__group")
        .get(pk=occurrence.pk)
    )


def _refuse_changing(occurrence: Occurrence, *, now: datetime) -> None:
    if occurrence.meeting.cancelled_at is not None or occurrence.is_cancelled:
        raise DomainError(_("This meeting is already cancelled."), code="already_cancelled")
    if occurrence.starts_at <= now:
        raise DomainError(
            _("This meeting has already begun, so it can't be changed now."),
            code="already_started",
        )


@transaction.atomic
def cancel_occurrence(occurrence: Occurrence, *, actor) -> Occurrence:
    """Cancel one sitting. Its RSVPs are kept as history; members hear about it on commit."""
    occurrence = _lock_occurrence(occurrence)
    _refuse_unless_manager(actor, occurrence.meeting.group)
    now = timezone.now()
    _refuse_changing(occurrence, now=now)
    updated = Occurrence.objects.filter(pk=occurrence.pk, status=OccurrenceStatus.SCHEDULED).update(
        status=OccurrenceStatus.CANCELLED, changed_at=now
    )
    if updated != 1:
        raise DomainError(_("This meeting is already cancelled."), code="already_cancelled")
    _on_commit_changed(occurrence.pk, "cancelled", actor.pk)
    occurrence.refresh_from_db(fields=["status", "changed_at"])
    sync_occurrence_reminders(occurrence, now=now)
    return occurrence


@transaction.atomic
def move_occurrence(occurrence: Occurrence, *, actor, starts_at: datetime) -> Occurrence:
    """Move one sitting to a new future start; its length stays, its RSVPs stay.

    The sitting keeps its ``original_start`` identity, so later schedule edits leave it where
    it was moved to.
    """
    occurrence = _lock_occurrence(occurrence)
    _refuse_unless_manager(actor, occurrence.meeting.group)
    now = timezone.now()
    _refuse_changing(occurrence, now=now)
    if not isinstance(starts_at, datetime) or timezone.is_naive(starts_at):
        raise DomainError(
            _("Please give the new start as a date and a time."),
            code="bad_start",
            field="starts_at",
        )
    if starts_at <= now:
        raise DomainError(
            _("That time has already passed. Please choose a time in the future."),
            code="start_in_past",
            field="starts_at",
        )
    if starts_at > now + HORIZON:
        raise DomainError(
            _("A meeting can be moved up to a year ahead. Please choose an earlier time."),
            code="start_too_far",
            field="starts_at",
        )
    starts_at = starts_at.astimezone(UTC)
    if starts_at == occurrence.starts_at:
        return occurrence
    length = occurrence.ends_at - occurrence.starts_at
    updated = Occurrence.objects.filter(pk=occurrence.pk, status=OccurrenceStatus.SCHEDULED).update(
        starts_at=starts_at, ends_at=starts_at + length, changed_at=now
    )
    if updated != 1:
        raise DomainError(_("This meeting is already cancelled."), code="already_cancelled")
    _on_commit_changed(occurrence.pk, "moved", actor.pk)
    occurrence.refresh_from_db(fields=["starts_at", "ends_at", "changed_at"])
    sync_occurrence_reminders(occurrence, now=now)
    return occurrence


@transaction.atomic
def rsvp(occurrence: Occurrence, *, user, answer: str) -> Rsvp:
    """Record (or change) a member's answer for one sitting that hasn't ended."""
    if answer not in RsvpAnswer.values:
        raise DomainError(
            _("Please choose going, maybe or not going."), code="bad_answer", field="answer"
        )
    # The lock makes a concurrent cancel wait, so nobody answers a sitting just cancelled.
    occurrence = _lock_occurrence(occurrence)
    group = occurrence.meeting.group
    if not (
        user.is_authenticated
        and Membership.objects.filter(
            group=group, user=user, status=MembershipStatus.ACTIVE
        ).exists()
    ):
        raise PermissionDenied(_("Answering is for the group's members."), code="not_member")
    if occurrence.is_cancelled or occurrence.meeting.cancelled_at is not None:
        raise DomainError(
            _("This meeting was cancelled, so there's nothing to answer."),
            code="occurrence_cancelled",
        )
    now = timezone.now()
    if occurrence.ends_at <= now:
        raise DomainError(_("This meeting has already ended."), code="occurrence_over")
    answer_row, _created = Rsvp.objects.update_or_create(
        occurrence=occurrence, user=user, defaults={"answer": answer, "updated_at": now}
    )
    sync_occurrence_reminders(occurrence, user=user, now=now)
    return answer_row
