"""The demo group's meetings (``manage.py demo``)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from groups.models import (
    Group,
    Meeting,
    Recurrence,
)
from groups.services.meetings.schedule import schedule_meeting

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
