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

from groups.services.meetings.demo import create_demo_meetings
from groups.services.meetings.feeds import calendar_feed_for, revoke_calendar_feed
from groups.services.meetings.recurrence import extend_all_occurrences, extend_occurrences
from groups.services.meetings.rules import HORIZON, OCCURRENCE_CAP
from groups.services.meetings.schedule import (
    cancel_meeting,
    cancel_occurrence,
    move_occurrence,
    rsvp,
    schedule_meeting,
    update_meeting,
)

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
