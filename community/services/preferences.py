"""Members' notification preferences, and the quiet-hours arithmetic everything else relies on.

Quiet hours are wall-clock times in the member's own time zone. ``start < end`` is a window
inside one day (13:00-15:00); ``start > end`` crosses midnight (22:00-07:00); ``start == end``
is refused (it would mean either nothing or the whole day). Both functions below are pure: they
read only the preference object and the instant they are given.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.models import (
    CHANNELS,
    REMINDER_LEAD_MINUTES,
    NotificationKind,
    NotificationPreference,
    User,
    validate_time_zone,
)

__all__ = [
    "in_quiet_hours",
    "quiet_hours_end",
    "set_email_preference",
    "update_preferences",
]


def _local_wall(prefs: NotificationPreference, when_utc: datetime) -> datetime:
    if when_utc.tzinfo is None:
        raise ValueError("when_utc must be timezone-aware")
    return when_utc.astimezone(prefs.zone)


def in_quiet_hours(prefs: NotificationPreference, when_utc: datetime) -> bool:
    """Whether ``when_utc`` falls inside the member's quiet hours (start inclusive, end not)."""
    if not prefs.has_quiet_hours:
        return False
    now = _local_wall(prefs, when_utc).time().replace(tzinfo=None)
    start, end = prefs.quiet_start, prefs.quiet_end
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _first_instant_at_or_after(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant whose wall clock in ``zone`` reads ``naive`` or later (UTC).

    An ambiguous wall time (the repeated hour when clocks go back) is its first occurrence; a
    wall time that does not exist (the hour skipped when clocks go forward) becomes the moment
    the clocks jump past it.
    """
    early = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    first, second = min(early, late), max(early, late)
    if first.astimezone(zone).replace(tzinfo=None) >= naive:
        return first
    # ``naive`` falls in a gap: search the (at most a few hours wide) gap to the second.
    lo, hi = first, second
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def quiet_hours_end(prefs: NotificationPreference, when_utc: datetime) -> datetime:
    """When the quiet hours around ``when_utc`` end, in UTC; ``when_utc`` itself outside them."""
    if not in_quiet_hours(prefs, when_utc):
        return when_utc
    local = _local_wall(prefs, when_utc)
    end_day = local.date()
    if prefs.quiet_start > prefs.quiet_end and local.time() >= prefs.quiet_start:
        end_day += timedelta(days=1)  # started this evening, ends tomorrow morning
    return _first_instant_at_or_after(datetime.combine(end_day, prefs.quiet_end), prefs.zone)


# --- Writes --------------------------------------------------------------------------------------


def _validate(
    *, channels: dict, reminder_lead_minutes, quiet_start: time | None, quiet_end: time | None
) -> tuple[dict, list[int]]:
    clean_channels: dict[str, dict[str, bool]] = {}
    for kind, choice in channels.items():
        if kind not in NotificationKind.values:
            raise DomainError(
                _("We don't know the notification kind “%(kind)s”.") % {"kind": kind},
                code="unknown_kind",
            )
        clean_channels[kind] = {c: bool(choice[c]) for c in CHANNELS if c in choice}
    leads = []
    for lead in reminder_lead_minutes:
        if isinstance(lead, bool) or not isinstance(lead, int) or lead not in REMINDER_LEAD_MINUTES:
            raise DomainError(
                _(
                    "Reminders can come 1 day, 1 hour or 15 minutes before a meeting, or not at all."
                ),
                code="bad_lead_time",
                field="reminder_lead_minutes",
            )
        leads.append(lead)
    if (quiet_start is None) != (quiet_end is None):
        raise DomainError(
            _("Quiet hours need both a start and an end (or leave both empty for none)."),
            code="quiet_hours_incomplete",
            field="quiet_end" if quiet_end is None else "quiet_start",
        )
    if quiet_start is not None and quiet_start == quiet_end:
        raise DomainError(
            _("Quiet hours need to end at a different time from when they start."),
            code="quiet_hours_empty",
            field="quiet_end",
        )
    return clean_channels, sorted(set(leads), reverse=True)


@transaction.atomic
def update_preferences(
    user: User,
    *,
    actor: User,
    channels: dict[str, dict[str, bool]],
    reminder_lead_minutes: list[int],
    quiet_start: time | None,
    quiet_end: time | None,
    time_zone: str | None = None,
) -> NotificationPreference:
    """Replace the member's choices. Any bad value raises DomainError and nothing is saved.

    ``channels`` may name only some kinds; the rest keep their defaults. ``time_zone`` (the
    member's own, which quiet hours are read in) is changed on the member when given.
    """
    if actor.pk != user.pk:
        raise PermissionDenied(_("Only you can change how you hear from us."))
    clean_channels, leads = _validate(
        channels=channels,
        reminder_lead_minutes=reminder_lead_minutes,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
    )
    if time_zone is not None:
        try:
            validate_time_zone(time_zone)
        except ValidationError as error:
            raise DomainError(
                error.messages[0], code="unknown_time_zone", field="time_zone"
            ) from None
    pref, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    merged = dict(pref.channels or {})
    for kind, choice in clean_channels.items():
        merged[kind] = {**merged.get(kind, {}), **choice}
    pref.channels = merged
    pref.reminder_lead_minutes = leads
    pref.quiet_start, pref.quiet_end = quiet_start, quiet_end
    pref.save(
        update_fields=[
            "channels",
            "reminder_lead_minutes",
            "quiet_start",
            "quiet_end",
            "updated_at",
        ]
    )
    if time_zone is not None and time_zone != user.time_zone:
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])
    return pref


@transaction.atomic
def set_email_preference(user: User, *, kind: str, enabled: bool) -> NotificationPreference:
    """Turn one kind's email on or off, leaving every other choice as it was (unsubscribe)."""
    if kind not in NotificationKind.values:
        raise DomainError(_("We don't know that kind of notification."), code="unknown_kind")
    pref, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    channels = dict(pref.channels or {})
    channels[kind] = {**channels.get(kind, {}), "email": enabled}
    pref.channels = channels
    pref.save(update_fields=["channels", "updated_at"])
    if not enabled:
        # Emails of this kind still waiting (quiet hours) are not sent either.
        user.notifications.filter(kind=kind, email_pending=True).update(email_pending=False)
    return pref
