"""Forms for members' own details. Validation rules live here and in the model's validators."""

import zoneinfo
from functools import cache

from django import forms
from django.utils.translation import gettext_lazy as _

from community.models import DISPLAY_NAME_MAX, validate_time_zone
from community.selectors import display_name_taken
from community.services import normalise_display_name


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
