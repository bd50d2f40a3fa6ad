"""Forms for meetings. They shape input; the rules themselves live in groups.services.meetings."""

import zoneinfo
from datetime import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from community.forms import time_zone_choices
from groups.models import Location, Meeting, Recurrence, RsvpAnswer

__all__ = ["MeetingForm", "MoveOccurrenceForm", "RsvpForm"]


def _aware(day, at, zone_name: str) -> datetime | None:
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return datetime.combine(day, at, tzinfo=zone)


class TimeZoneChoiceField(forms.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=time_zone_choices, **kwargs)

    def validate(self, value):
        # The service explains an unknown zone kindly; ChoiceField would say "Select a valid
        # choice". Only emptiness is checked here.
        forms.Field.validate(self, value)


class MeetingForm(forms.Form):
    """One meeting series. ``starts_at`` is assembled from the date, time and zone."""

    title = forms.CharField(label=_("Title"), max_length=120)
    date = forms.DateField(
        label=_("Date of the first meeting"), widget=forms.DateInput(attrs={"type": "date"})
    )
    start_time = forms.TimeField(
        label=_("Start time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    time_zone = TimeZoneChoiceField(
        label=_("Time zone"),
        help_text=_("Repeating meetings keep this local time, also when the clocks change."),
    )
    duration_minutes = forms.IntegerField(
        label=_("Length in minutes"),
        initial=60,
        help_text=_("From 5 minutes to 10 hours."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    recurrence = forms.ChoiceField(
        label=_("How often"), choices=Recurrence.choices, widget=forms.RadioSelect, initial="none"
    )
    recurrence_count = forms.IntegerField(
        label=_("Number of meetings (optional)"),
        required=False,
        help_text=_("Leave this and the end date empty to keep going until you stop it."),
    )
    recurrence_until = forms.DateField(
        label=_("Repeat until (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    location = forms.ChoiceField(
        label=_("Where"), choices=Location.choices, widget=forms.RadioSelect, initial="room"
    )
    video_url = forms.URLField(
        label=_("Video link"),
        required=False,
        assume_scheme="https",
        help_text=_("Only for video meetings. Members see it on the meeting and in calendars."),
    )
    facilitator_note = forms.CharField(
        label=_("A note for members (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown on the group's page. It isn't put into calendar files."),
    )

    @classmethod
    def initial_for(cls, meeting: Meeting) -> dict:
        local = meeting.starts_at.astimezone(zoneinfo.ZoneInfo(meeting.time_zone))
        return {
            "title": meeting.title,
            "date": local.date(),
            "start_time": local.time().replace(second=0, microsecond=0),
            "time_zone": meeting.time_zone,
            "duration_minutes": meeting.duration_minutes,
            "recurrence": meeting.recurrence,
            "recurrence_count": meeting.recurrence_count,
            "recurrence_until": meeting.recurrence_until,
            "location": meeting.location,
            "video_url": meeting.video_url,
            "facilitator_note": meeting.facilitator_note,
        }

    def clean(self):
        data = super().clean()
        day, at, zone = data.get("date"), data.get("start_time"), data.get("time_zone")
        if day and at and zone:
            data["starts_at"] = _aware(day, at, zone)
            if data["starts_at"] is None:
                # Not a zone at all; keep the value so the service gives its kind message.
                data["starts_at"] = datetime.combine(day, at)
        return data

    def service_kwargs(self) -> dict:
        """Exactly the keyword arguments schedule_meeting / update_meeting take."""
        data = self.cleaned_data
        return {
            "title": data["title"],
            "starts_at": data["starts_at"],
            "time_zone": data["time_zone"],
            "duration_minutes": data["duration_minutes"],
            "recurrence": data["recurrence"],
            "recurrence_count": data["recurrence_count"],
            "recurrence_until": data["recurrence_until"],
            "facilitator_note": data["facilitator_note"],
            "location": data["location"],
            "video_url": data["video_url"],
        }


# Where a service's error belongs on the meeting form.
MEETING_FIELD_FOR = {"starts_at": "date"}


class MoveOccurrenceForm(forms.Form):
    """A new start for one sitting, given on the wall clock of the meeting's time zone."""

    date = forms.DateField(label=_("New date"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(
        label=_("New start time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )

    def __init__(self, *args, time_zone: str, **kwargs):
        self.time_zone = time_zone
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("date") and data.get("start_time"):
            data["starts_at"] = _aware(data["date"], data["start_time"], self.time_zone)
        return data


class RsvpForm(forms.Form):
    answer = forms.ChoiceField(choices=RsvpAnswer.choices)
