"""Recurrence on the meeting's own wall clock, materialising occurrence rows, and keeping the
window of rows filled (``extend_occurrences``, run by Celery beat)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

from dateutil import rrule
from django.db import transaction
from django.utils import timezone

from groups.models import (
    Meeting,
    Occurrence,
    Recurrence,
)
from groups.services.meetings.rules import HORIZON, OCCURRENCE_CAP, _lock_meeting
from groups.services.reminders import sync_meeting_reminders

# --- Recurrence -------------------------------------------------------------------------------


def _nth_weekday(local_start: datetime) -> rrule.weekday:
    """The start's weekday with its position in the month: 2nd Tuesday -> TU(+2).

    A start in the fifth week becomes "last" (TU(-1)): a fifth Tuesday is always the month's
    last, and "last Tuesday" exists every month where "fifth Tuesday" mostly does not.
    """
    nth = (local_start.day - 1) // 7 + 1
    return rrule.weekdays[local_start.weekday()](-1 if nth == 5 else nth)


def _rule(meeting: Meeting):
    """An iterator of naive local start times (wall clock in the meeting's zone)."""
    zone = zoneinfo.ZoneInfo(meeting.time_zone)
    local_start = meeting.starts_at.astimezone(zone).replace(tzinfo=None)
    if meeting.recurrence == Recurrence.NONE:
        return iter([local_start])
    until = None
    if meeting.recurrence_until is not None:
        until = datetime.combine(meeting.recurrence_until, time.max)
    options = {"dtstart": local_start, "count": meeting.recurrence_count, "until": until}
    if meeting.recurrence == Recurrence.WEEKLY:
        return iter(rrule.rrule(rrule.WEEKLY, **options))
    if meeting.recurrence == Recurrence.BIWEEKLY:
        return iter(rrule.rrule(rrule.WEEKLY, interval=2, **options))
    return iter(rrule.rrule(rrule.MONTHLY, byweekday=_nth_weekday(local_start), **options))


def _to_utc(local: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    # A wall-clock time that doesn't exist (inside the spring-forward gap) comes out an hour
    # later; an ambiguous one (autumn) takes its first, daylight-saving, reading (fold=0).
    return local.replace(tzinfo=zone).astimezone(UTC)


def _planned_starts(meeting: Meeting, *, now: datetime) -> list[datetime]:
    """UTC starts the recurrence puts after ``now``, capped by count and horizon, leaving out
    any day (on the meeting's wall clock) whose sitting has already begun: moved from 19:00 to
    20:00 at 19:30, tonight's sitting is the one under way, and the new time starts next time,
    not with a second sitting tonight."""
    zone = zoneinfo.ZoneInfo(meeting.time_zone)
    horizon = now + HORIZON
    # A day's sitting is known by its original start; only one that began within the last two
    # days can share a wall-clock day with a start still ahead.
    begun_days = {
        start.astimezone(zone).date()
        for start in Occurrence.objects.filter(
            meeting=meeting, original_start__lte=now, original_start__gt=now - timedelta(days=2)
        ).values_list("original_start", flat=True)
    }
    starts: list[datetime] = []
    for local in _rule(meeting):
        start = _to_utc(local, zone)
        if start > horizon:
            break
        if start > now and local.date() not in begun_days:
            starts.append(start)
            if len(starts) >= OCCURRENCE_CAP:
                break
    return starts


def _materialise(meeting: Meeting, *, now: datetime) -> int:
    """Create the missing future occurrence rows. Safe to run twice (unique original_start)."""
    duration = timedelta(minutes=meeting.duration_minutes)
    existing = set(
        Occurrence.objects.filter(meeting=meeting, original_start__gt=now).values_list(
            "original_start", flat=True
        )
    )
    rows = [
        Occurrence(meeting=meeting, original_start=s, starts_at=s, ends_at=s + duration)
        for s in _planned_starts(meeting, now=now)
        if s not in existing
    ]
    # ignore_conflicts: a concurrent run that inserted the same sitting first wins quietly.
    Occurrence.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- Extending the window (Celery beat) ----------------------------------------------------------


def extend_occurrences(meeting: Meeting, *, now: datetime | None = None) -> int:
    """Fill a live meeting's occurrence window up to the cap. Safe to run twice."""
    now = now or timezone.now()
    with transaction.atomic():
        meeting = _lock_meeting(meeting)
        if meeting.cancelled_at is not None or meeting.group.is_archived:
            return 0
        created = _materialise(meeting, now=now)
        if created:
            sync_meeting_reminders(meeting, now=now)
        return created


def extend_all_occurrences(*, now: datetime | None = None) -> int:
    """Extend every live recurring meeting, one short transaction each."""
    now = now or timezone.now()
    created = 0
    ids = (
        Meeting.objects.filter(cancelled_at__isnull=True, group__archived_at__isnull=True)
        .exclude(recurrence=Recurrence.NONE)
        .exclude(recurrence_until__lt=now.date() - timedelta(days=1))
        .values_list("pk", flat=True)
    )
    for meeting in Meeting.objects.filter(pk__in=list(ids)).only("pk"):
        created += extend_occurrences(meeting, now=now)
    return created
