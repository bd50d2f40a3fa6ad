"""What every meeting write checks: who may manage a group's meetings, the limits and the
validation of a schedule, and the event after a change commits."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from groups import signals
from groups.models import (
    Group,
    Location,
    Meeting,
    Occurrence,
    Recurrence,
)
from groups.selectors.membership import can_manage_group

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


def _lock_meeting(meeting: Meeting) -> Meeting:
    """Re-read the meeting under a row lock. Precondition: inside ``transaction.atomic``."""
    # of=("self",): lock the meeting row only, not the group row the join reads.
    return (
        Meeting.objects.select_for_update(of=("self",)).select_related("group").get(pk=meeting.pk)
    )
