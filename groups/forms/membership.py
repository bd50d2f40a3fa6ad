from django import forms
from django.utils.translation import gettext_lazy as _

from groups.models import DEFAULT_CAPACITY, MAX_CAPACITY, Group, JoinPolicy, Topic


class GroupForm(forms.ModelForm):
    capacity = forms.IntegerField(
        label=_("Size limit"),
        min_value=2,
        max_value=MAX_CAPACITY,
        initial=DEFAULT_CAPACITY,
        help_text=_("Small groups feel safer: 12 is a good size, 20 at most."),
    )

    class Meta:
        model = Group
        fields = [
            "name",
            "slug",
            "topic",
            "description",
            "agreement",
            "capacity",
            "join_policy",
            "is_listed",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "agreement": forms.Textarea(attrs={"rows": 8}),
            "join_policy": forms.RadioSelect,
        }
        help_texts = {
            "slug": _("Used in the group's web address, e.g. evening-circle."),
        }

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            # The address is shared in links and calendars; it stays put.
            del self.fields["slug"]

    def validate_unique(self):
        # Uniqueness of the address is a service rule with a kinder message.
        pass


class JoinForm(forms.Form):
    agreement_version = forms.IntegerField(widget=forms.HiddenInput)
    accept = forms.BooleanField(
        label=_("I've read the group agreement and I'll do my best to keep it."),
        error_messages={"required": _("Please read the agreement and tick the box to join.")},
    )
    message = forms.CharField(
        label=_("A few words for the facilitators (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class AgreementForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    accept = forms.BooleanField(
        label=_("I've read the updated agreement."),
        error_messages={"required": _("Please tick the box once you've read it.")},
    )


class DecideRequestForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", _("Welcome them")), ("decline", _("Not this time"))]
    )
    note = forms.CharField(
        label=_("A kind note to them (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class InviteForm(forms.Form):
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=30, initial=7)


class DirectoryForm(forms.Form):
    q = forms.CharField(label=_("Search by name"), required=False, max_length=80)
    topic = forms.ChoiceField(
        label=_("Topic"), required=False, choices=[("", _("All topics")), *Topic.choices]
    )


class ListeningForm(forms.Form):
    listening = forms.BooleanField(required=False)


POLICY_SHORT = {
    JoinPolicy.OPEN: _("Open"),
    JoinPolicy.APPROVAL: _("Ask to join"),
    JoinPolicy.INVITE: _("Invitation only"),
}
