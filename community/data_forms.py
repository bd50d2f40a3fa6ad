"""Forms of the "My data" page: deleting one's account."""

from django import forms
from django.utils.translation import gettext_lazy as _

ERASE, KEEP = "erase", "keep"


class EraseAccountForm(forms.Form):
    messages = forms.ChoiceField(
        label=_("Your messages in groups"),
        choices=[
            (ERASE, _("Erase them: each one shows “message removed” in its room")),
            (KEEP, _("Keep them for the group: they stay, shown as written by “Former member”")),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose what happens to your messages.")},
    )
    password = forms.CharField(
        label=_("Your password"),
        help_text=_("To be sure it's you."),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": _("Please enter your password.")},
    )

    def service_arguments(self) -> dict:
        return {
            "password": self.cleaned_data["password"],
            "keep_messages": self.cleaned_data["messages"] == KEEP,
        }
