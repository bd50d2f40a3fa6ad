"""Forms for muting and blocking: from the people page, and from a message in the room."""

from django import forms
from django.utils.translation import gettext_lazy as _

MUTE_OR_BLOCK = [
    ("mute", _("Mute: fold their messages for me")),
    (
        "block",
        _("Block: fold their messages, and keep my presence and one-to-one contact from them"),
    ),
]
UNDO = [("unmute", _("Unmute")), ("unblock", _("Unblock"))]


class ChoosePersonForm(forms.Form):
    """Mute or block someone, chosen by display name among the people one shares (or shared)
    a circle with, and one's safe persons."""

    person = forms.ChoiceField(
        label=_("Who?"),
        error_messages={
            "required": _("Please choose someone from your circles."),
            "invalid_choice": _(
                "That isn't someone from your circles. Please choose from the list; nothing "
                "was changed."
            ),
        },
    )
    action = forms.ChoiceField(
        label=_("What would you like?"),
        choices=MUTE_OR_BLOCK,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Please choose whether to mute or to block."),
            "invalid_choice": _("Please choose whether to mute or to block."),
        },
    )

    def __init__(self, *args, names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [("", _("Choose someone")), *((n, n) for n in names)]


class UndoPersonForm(forms.Form):
    """Unmute or unblock someone on one's own list (by display name)."""

    person = forms.CharField(max_length=100)
    action = forms.ChoiceField(choices=UNDO)


class RoomPersonForm(forms.Form):
    """Mute or block the author of a message in the room (the message names them)."""

    action = forms.ChoiceField(choices=MUTE_OR_BLOCK)
