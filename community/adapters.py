from allauth.account.adapter import DefaultAccountAdapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter

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


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """Ending a session (from the sessions page, or allauth's "sign out other sessions") also
    closes that session's open sockets at once, as signing out does."""

    def end_sessions(self, sessions) -> None:
        from community.realtime import SESSION_ENDED, send_event_on_commit, session_channel_group

        sessions = list(sessions)
        for session in sessions:
            send_event_on_commit(
                session_channel_group(session.session_key), {"type": SESSION_ENDED}
            )
        super().end_sessions(sessions)
