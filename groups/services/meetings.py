"""Meetings: scheduling, recurrence, moving and cancelling occurrences, RSVPs, calendar feeds.

Recurrence happens on the wall clock of the meeting's own time zone: each start is generated as
a local time with ``dateutil.rrule`` and only then converted to UTC, so a 19:00 London meeting
stays at 19:00 London across daylight-saving changes.

Occurrences are rows, materialised ahead up to a cap (``OCCURRENCE_CAP`` sittings or
``HORIZON`` ahead, whichever comes first); ``extend_occurrences`` (run by Celery beat through
``groups.tasks.task_extend_occurrences``) keeps that window filled. An occurrence's identity is
its ``original_start`` (where the recurrence put it), so regenerating a schedule keeps the RSVPs
of every sitting that still exists, and materialising twice creates nothing new.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

from dateutil import rrule
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from groups import signals
from groups.models import (
    CalendarFeed,
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
    new_token,
)
from groups.selectors.membership import can_manage_group
from groups.services.reminders import sync_meeting_reminders, sync_occurrence_reminders

__all__ = [
    "HORIZON",
    "OCCURRENCE_CAP",
    "calendar_feed_for",
    "cancel_meeting",
    "cancel_occurrence",
    "create_demo_meetings",
    "extend_all_occurrences",
    "extend_occurrences",
    "move_occurrence",
    "revoke_calendar_feed",
    "rsvp",
    "schedule_meeting",
    "update_meeting",
]

logger = logging.getLogger(__name__)

# How far ahead occurrence rows exist: at most 52 sittings and at most about a year.
OCCURRENCE_CAP = 52
HORIZON = timedelta(days=365)
MIN_DURATION, MAX_DURATION = 5, 600  # mirrors the meeting_duration_5_to_600 constraint
MAX_TITLE = 120
MAX_NOTE = 500
MAX_COUNT = 520  # ten years of weekly sittings: a limit, not a target

# The fields update_meeting accepts; the schedule fields regenerate future occurrences.
SCHEDULE_FIELDS = (
    "starts_at",
    "time_zone",
    "duration_minutes",
    "recurrence",
    "recurrence_count",
    "recurrence_until",
)
EDITABLE_FIELDS = (*SCHEDULE_FIELDS, "title", "facilitator_note", "location", "video_url")


def _refuse_unless_manager(actor, group: Group) -> None:
    if not can_manage_group(actor, group):
        raise PermissionDenied(
            _("Only this group's facilitators can arrange its meetings."), code="not_facilitator"
        )


def _on_commit_changed(occurrence_id: int, change: str, actor_id: int | None) -> None:
    transaction.on_commit(
        lambda: signals.occurrence_changed.send(
            sender=Occurrence, occurrence_id=occurrence_id, change=change, actor_id=actor_id
        )
    )


# --- Validation -------------------------------------------------------------------------------


def _validate(values: dict, *, now: datetime, future_start: bool, near_start: bool) -> dict:
    """Check a whole meeting's worth of values and return them tidied.

    ``future_start``: the first start must not have passed; ``near_start``: it must be within
    the horizon.

    Raises DomainError (with ``field`` in ``details`` so a form can show it in place) before
    anything is written.
    """
    title = (values["title"] or "").strip()
    if not title:
        raise DomainError(_("Please give the meeting a title."), code="no_title", field="title")
    if len(title) > MAX_TITLE:
        raise DomainError(
            _("Please keep the title to %(max)d characters.") % {"max": MAX_TITLE},
            code="title_too_long",
            field="title",
        )

    zone_name = values["time_zone"] or ""
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None or zone_name not in zoneinfo.available_timezones():
        raise DomainError(
            _("We don't recognise the time zone “%(zone)s”. Please pick one from the list.")
            % {"zone": zone_name},
            code="unknown_time_zone",
            field="time_zone",
        )

    starts_at = values["starts_at"]
    if not isinstance(starts_at, datetime) or timezone.is_naive(starts_at):
        raise DomainError(
            _("Please give the start as a date and a time."), code="bad_start", field="starts_at"
        )
    if future_start and starts_at <= now:
        raise DomainError(
            _("That start time has already passed. Please choose a time in the future."),
            code="start_in_past",
            field="starts_at",
        )
    if near_start and starts_at > now + HORIZON:
        raise DomainError(
            _("Meetings can be planned up to a year ahead. Please choose an earlier start."),
            code="start_too_far",
            field="starts_at",
        )

    duration = values["duration_minutes"]
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        raise DomainError(
            _("A meeting needs to end after it starts. Please give its length in minutes."),
            code="ends_before_start",
            field="duration_minutes",
        )
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise DomainError(
            _("A meeting can last from %(min)d minutes to %(max)d hours.")
            % {"min": MIN_DURATION, "max": MAX_DURATION // 60},
            code="bad_duration",
            field="duration_minutes",
        )

    recurrence = values["recurrence"]
    if recurrence not in Recurrence.values:
        raise DomainError(
            _("Please choose how often the meeting happens."),
            code="bad_recurrence",
            field="recurrence",
        )
    count, until = values["recurrence_count"], values["recurrence_until"]
    if recurrence == Recurrence.NONE:
        # A one-off meeting has nothing to repeat; stale limits from the form mean nothing.
        count = until = None
    if count is not None and until is not None:
        raise DomainError(
            _("Please choose either a number of meetings or an end date, not both."),
            code="count_and_until",
            field="recurrence_count",
        )
    if count is not None and not 1 <= count <= MAX_COUNT:
        raise DomainError(
            _("The number of meetings can be from 1 to %(max)d.") % {"max": MAX_COUNT},
            code="bad_count",
            field="recurrence_count",
        )
    if until is not None and until < starts_at.astimezone(zone).date():
        raise DomainError(
            _("The repeat-until date is before the first meeting. Please choose a later date."),
            code="until_before_start",
            field="recurrence_until",
        )

    location = values["location"]
    if location not in Location.values:
        raise DomainError(
            _("Please choose where the meeting happens."), code="bad_location", field="location"
        )
    video_url = (values["video_url"] or "").strip()
    if location == Location.VIDEO:
        if not video_url:
            raise DomainError(
                _("A video meeting needs its link, so members know where to go."),
                code="video_without_link",
                field="video_url",
            )
        try:
            URLValidator(schemes=["https", "http"])(video_url)
        except ValidationError:
            raise DomainError(
                _(
                    "That video link doesn't look like a web address (it should start with https://)."
                ),
                code="bad_video_link",
                field="video_url",
            ) from None
    else:
        video_url = ""  # the room needs no link; don't keep a stale one around

    note = (values["facilitator_note"] or "").strip()
    if len(note) > MAX_NOTE:
        raise DomainError(
            _("Please keep the note to %(max)d characters.") % {"max": MAX_NOTE},
            code="note_too_long",
            field="facilitator_note",
        )
    return {
        "title": title,
        "starts_at": starts_at.astimezone(UTC),
        "time_zone": zone_name,
        "duration_minutes": duration,
        "recurrence": recurrence,
        "recurrence_count": count,
        "recurrence_until": until,
        "facilitator_note": note,
        "location": location,
        "video_url": video_url,
    }


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
    """UTC starts the recurrence puts after ``now``, capped by count and horizon."""
    zone = zoneinfo.ZoneInfo(meeting.time_zone)
    horizon = now + HORIZON
    starts: list[datetime] = []
    for local in _rule(meeting):
        start = _to_utc(local, zone)
        if start > horizon:
            break
        if start > now:
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


def _lock_meeting(meeting: Meeting) -> Meeting:
    """Re-read the meeting under a row lock. Precondition: inside ``transaction.atomic``."""
    # of=("self",): lock the meeting row only, not the group row the join reads.
    return (
        Meeting.objects.select_for_update(of=("self",)).select_related("group").get(pk=meeting.pk)
    )


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


# --- Calendar feeds -------------------------------------------------------------------------


def calendar_feed_for(user) -> CalendarFeed:
    """The member's private feed, made on first use."""
    feed, _created = CalendarFeed.objects.get_or_create(user=user)
    return feed


@transaction.atomic
def revoke_calendar_feed(user) -> CalendarFeed:
    """Replace the feed's token: the old address stops working at once."""
    feed = CalendarFeed.objects.select_for_update().filter(user=user).first()
    if feed is None:
        return CalendarFeed.objects.create(user=user)
    feed.token = new_token()
    feed.created_at = timezone.now()
    feed.save(update_fields=["token", "created_at"])
    return feed


# --- Demo -----------------------------------------------------------------------------------


def create_demo_meetings(group: Group, *, actor, now: datetime | None = None) -> Meeting:
    """A weekly 19:00 Europe/London meeting from next Tuesday, eight sittings.

    Idempotent: a group that already has the demo meeting keeps it.
    """
    title = _("Weekly circle")
    existing = Meeting.objects.filter(group=group, title=title, cancelled_at__isnull=True).first()
    if existing is not None:
        return existing
    zone = zoneinfo.ZoneInfo("Europe/London")
    today = (now or timezone.now()).astimezone(zone).date()
    days_ahead = (1 - today.weekday()) % 7 or 7  # Tuesday is weekday 1; never today
    starts_at = datetime.combine(today + timedelta(days=days_ahead), time(19, 0), tzinfo=zone)
    return schedule_meeting(
        group,
        actor=actor,
        title=title,
        starts_at=starts_at,
        time_zone="Europe/London",
        duration_minutes=60,
        recurrence=Recurrence.WEEKLY,
        recurrence_count=8,
        facilitator_note=_("Come as you are. Listening is a fine way to take part."),
    )
