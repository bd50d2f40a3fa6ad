"""The check-in form: what the room's check-in dialog posts (with or without JavaScript)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from groups.models import (
    CHECK_IN_MAX_FEELINGS,
    CHECK_IN_NOTE_MAX_CHARS,
    CheckInAudience,
    Feeling,
    Presence,
)

PRESENCE_ERROR = _(
    "Please choose how present you feel on the scale, from “far away” to “fully here”."
)


class CheckInForm(forms.Form):
    presence = forms.TypedChoiceField(
        label=_("How present do you feel right now?"),
        choices=Presence.choices,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": PRESENCE_ERROR, "invalid_choice": PRESENCE_ERROR},
    )
    feelings = forms.MultipleChoiceField(
        label=_("Any feeling words? (up to three)"),
        choices=Feeling.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _(
                "That isn't one of the feeling words here. Please choose from the list."
            ),
            "invalid_list": _("Feeling words are chosen from the list."),
        },
    )
    note = forms.CharField(
        label=_("A line about it (optional)"),
        required=False,
        max_length=CHECK_IN_NOTE_MAX_CHARS,
        error_messages={
            "max_length": _(
                "Please keep the note to one short line (up to %(limit_value)d characters)."
            )
        },
    )
    audience = forms.ChoiceField(
        label=_("Who sees it?"),
        choices=CheckInAudience.choices,
        initial=CheckInAudience.PRIVATE,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Please choose who sees this check-in."),
            "invalid_choice": _("Please choose who sees this check-in."),
        },
    )
    client_id = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def clean_feelings(self):
        feelings = self.cleaned_data["feelings"]
        if len(set(feelings)) > CHECK_IN_MAX_FEELINGS:
            raise forms.ValidationError(
                _("Up to %(max)s feeling words, please: whichever feel closest right now."),
                params={"max": CHECK_IN_MAX_FEELINGS},
                code="too_many_feelings",
            )
        return feelings

    def first_error(self) -> str:
        """The first problem, in the order the form asks its questions: one kind sentence."""
        for name in self.fields:
            if name in self.errors:
                return self.errors[name][0]
        return str(self.non_field_errors()[0]) if self.non_field_errors() else ""
