"""Forms of the practice page: the rehearsed share's destination, and clearing the space."""

from django import forms
from django.utils.translation import gettext_lazy

from groups.models import CONTENT_WARNING_MAX_CHARS


class ShareForm(forms.Form):
    group = forms.SlugField(label=gettext_lazy("Which group?"))
    content_warning = forms.CharField(
        label=gettext_lazy("Content note (optional)"),
        required=False,
        max_length=CONTENT_WARNING_MAX_CHARS,
    )


class ClearForm(forms.Form):
    confirm = forms.BooleanField(label=gettext_lazy("Yes, clear my practice space"))
