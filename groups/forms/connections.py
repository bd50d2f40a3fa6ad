"""Forms for the safe-persons page: inviting someone, availability times, the short status."""

from django import forms
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from groups.models import INVITE_NOTE_MAX_CHARS, STATUS_MAX_CHARS

STATUS_DURATIONS = [
    (1, _("For an hour")),
    (4, _("For 4 hours")),
    (24, _("Until this time tomorrow")),
    (72, _("For 3 days")),
]
# Offered as suggestions; anyone may write their own words.
STATUS_SUGGESTIONS = [
    _("I feel distant right now"),
    _("Having a hard day, no need to reply"),
    _("Quiet today, but I'm okay"),
    _("Glad to hear from you today"),
]


class SafePersonInviteForm(forms.Form):
    """Choose, by display name, among the people one shares a circle with."""

    person = forms.ChoiceField(
        label=_("Who would you like to invite?"),
        error_messages={
            "required": _("Please choose someone from your circles."),
            "invalid_choice": _(
                "That person isn't someone you can invite just now. Please choose from the list."
            ),
        },
    )
    note = forms.CharField(
        label=_("A few words for them (optional)"),
        required=False,
        max_length=INVITE_NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "max_length": _("Please keep the note to %(limit_value)d characters."),
        },
    )

    def __init__(self, *args, names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [("", _("Choose someone")), *((n, n) for n in names)]


class AvailabilityForm(forms.Form):
    """One time that suits, on the member's own clock; an end before the start runs past
    midnight."""

    days = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=list(WEEKDAYS.items()),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Please choose at least one day."),
            "invalid_choice": _("Please choose days from the list."),
        },
    )
    start = forms.TimeField(
        label=_("From"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"required": _("Please give a start time."),
                        "invalid": _("Please give a time like 18:00.")},
    )  # fmt: skip
    end = forms.TimeField(
        label=_("Until"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"required": _("Please give an end time."),
                        "invalid": _("Please give a time like 21:00.")},
    )  # fmt: skip


class RemoveAvailabilityForm(forms.Form):
    index = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class SafeStatusForm(forms.Form):
    text = forms.CharField(
        label=_("In a few words"),
        max_length=STATUS_MAX_CHARS,
        help_text=_(
            "Only your safe persons and your circles' facilitators see it. It needs no reply."
        ),
        widget=forms.TextInput(attrs={"list": "status-suggestions", "autocomplete": "off"}),
        error_messages={
            "required": _("A status needs a few words."),
            "max_length": _("Please keep a status to %(limit_value)d characters."),
        },
    )
    hours = forms.TypedChoiceField(
        label=_("Show it"),
        choices=STATUS_DURATIONS,
        coerce=int,
        initial=4,
        error_messages={
            "required": _("Please choose how long it should show."),
            "invalid_choice": _("Please choose how long it should show."),
        },
    )
