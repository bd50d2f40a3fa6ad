from allauth.account.adapter import DefaultAccountAdapter

from community.services import apply_member_profile


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        apply_member_profile(
            user,
            display_name=form.cleaned_data["display_name"],
            time_zone=form.cleaned_data["time_zone"],
        )
        if commit:
            user.save()
        return user
