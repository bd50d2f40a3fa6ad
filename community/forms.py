"""Forms for members' own details. Validation rules live here and in the model's validators."""

import zoneinfo
from functools import cache

from django import forms
from django.utils.translation import gettext_lazy as _

from community.errors import DomainError
from community.models import (
    CHANNELS,
    DISPLAY_NAME_MAX,
    REMINDER_LEAD_CHOICES,
    NotificationKind,
    validate_time_zone,
)
from community.ratelimits import Limit, enforce, private_key
from community.selectors import display_name_taken
from community.services import normalise_display_name

# Sign-ups with one email address (see MemberSignupForm.clean).
SIGNUP_LIMIT_PER_ADDRESS = Limit("signup:address", 3, 60 * 60)


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return [(z, z.replace("_", " ")) for z in zones]


class DisplayNameField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            label=_("Display name"),
            min_length=2,
            max_length=DISPLAY_NAME_MAX,
            help_text=_(
                "This is the only thing other members will see about you. "
                "It doesn't need to be your real name."
            ),
            **kwargs,
        )

    def clean(self, value):
        value = normalise_display_name(super().clean(value) or "")
        if "@" in value:
            raise forms.ValidationError(
                _(
                    "Please choose a name without “@”, so that your email address never shows "
                    "to other members."
                ),
                code="looks_like_email",
            )
        return value


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            label=_("Time zone"),
            choices=time_zone_choices,
            initial="UTC",
            help_text=_("Meetings and reminders are shown in this time zone."),
            **kwargs,
        )

    def validate(self, value):
        # A kinder message than ChoiceField's “Select a valid choice”.
        validate_time_zone(value)


class _ProfileFieldsMixin:
    user = None

    def clean_display_name(self):
        name = self.cleaned_data["display_name"]
        if display_name_taken(name, exclude=self.user):
            raise forms.ValidationError(
                _("Someone here already uses that name. Could you choose another?"),
                code="display_name_taken",
            )
        return name


class MemberSignupForm(_ProfileFieldsMixin, forms.Form):
    """Extra fields on allauth's signup form (ACCOUNT_SIGNUP_FORM_CLASS)."""

    display_name = DisplayNameField()
    # site.js preselects the browser's zone when the member has not picked one.
    time_zone = TimeZoneField(widget=forms.Select(attrs={"data-detect-zone": ""}))

    def clean(self):
        """Sign-ups per address: each sign-up with an address sends it an email (a verification
        link, or, for a known address, a note that it already has an account), so without a
        limit anyone could fill someone's inbox from this form. Per IP is allauth's limit
        (``ACCOUNT_RATE_LIMITS["signup"]``). Counted only for an otherwise valid form."""
        cleaned_data = super().clean()
        email = cleaned_data.get("email")
        if email and not self.errors:
            try:
                enforce(
                    (SIGNUP_LIMIT_PER_ADDRESS, private_key(email.lower())),
                    message=_(
                        "This address has been used to sign up several times in a short "
                        "while, so we've paused sign-ups with it for %(wait)s. If it's yours, "
                        "please look for our email in its inbox (and spam folder)."
                    ),
                )
            except DomainError as error:
                raise forms.ValidationError(error.message, code=error.code) from None
        return cleaned_data

    def signup(self, request, user):
        # The adapter already applied these fields before the user's first save.
        pass


class ProfileForm(_ProfileFieldsMixin, forms.Form):
    display_name = DisplayNameField()
    time_zone = TimeZoneField()

    def __init__(self, *args, user, **kwargs):
        self.user = user
        kwargs.setdefault(
            "initial", {"display_name": user.display_name, "time_zone": user.time_zone}
        )
        super().__init__(*args, **kwargs)


class NotificationPreferencesForm(forms.Form):
    """Per kind: in the app and/or by email; reminder lead times; quiet hours; time zone.

    The rules (quiet hours that end when they start, unknown lead times) are checked by
    ``community.services.update_preferences``; the view shows its errors on these fields.
    """

    reminder_lead_minutes = forms.TypedMultipleChoiceField(
        label=_("Remind me before a meeting"),
        choices=REMINDER_LEAD_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for no reminders."),
        error_messages={
            "invalid_choice": _(
                "Reminders can come 1 day, 1 hour or 15 minutes before a meeting, or not at all."
            )
        },
    )
    quiet_start = forms.TimeField(
        label=_("Quiet hours start"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_("No emails between these times. Leave both empty for no quiet hours."),
    )
    quiet_end = forms.TimeField(
        label=_("Quiet hours end"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    time_zone = TimeZoneField()

    def __init__(self, *args, user, preference, **kwargs):
        self.user = user
        initial = {
            "reminder_lead_minutes": list(preference.reminder_lead_minutes or []),
            "quiet_start": preference.quiet_start,
            "quiet_end": preference.quiet_end,
            "time_zone": user.time_zone,
        }
        for kind in NotificationKind:
            for channel in CHANNELS:
                initial[f"{channel}__{kind.value}"] = preference.wants(kind.value, channel)
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for kind in NotificationKind:
            self.fields[f"in_app__{kind.value}"] = forms.BooleanField(
                label=_("In the app"), required=False
            )
            self.fields[f"email__{kind.value}"] = forms.BooleanField(
                label=_("By email"), required=False
            )

    def kind_rows(self):
        """(kind label, in-app field, email field) per kind, for the template's table."""
        return [
            (kind.label, self[f"in_app__{kind.value}"], self[f"email__{kind.value}"])
            for kind in NotificationKind
        ]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "channels": {
                kind.value: {c: bool(data.get(f"{c}__{kind.value}")) for c in CHANNELS}
                for kind in NotificationKind
            },
            "reminder_lead_minutes": list(data.get("reminder_lead_minutes") or []),
            "quiet_start": data.get("quiet_start"),
            "quiet_end": data.get("quiet_end"),
            "time_zone": data["time_zone"],
        }
