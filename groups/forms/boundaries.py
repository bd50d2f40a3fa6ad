"""The content-boundaries form: which sensitive topics a member wants softened."""

from django import forms
from django.utils.translation import gettext_lazy as _

from groups.models import SensitiveTopic


class ContentBoundariesForm(forms.Form):
    topics = forms.MultipleChoiceField(
        label=_("Topics I'd like softened"),
        choices=SensitiveTopic.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _(
                "“%(value)s” isn't one of the topics you can choose. Nothing was changed; "
                "please pick from the list."
            ),
            "invalid_list": _("Topics are chosen from the list."),
        },
    )
