"""Account events that end sessions, wired in ``CommunityConfig.ready``.

What ending means lives in ``community.services.sessions``; these only route the signals there.
"""

from __future__ import annotations

from allauth.account.signals import password_changed, password_reset, password_set
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from community.services.sessions import end_every_session, end_signed_out_session


@receiver(user_logged_out, dispatch_uid="community_close_sockets_on_logout")
def close_session_sockets(sender, request, user, **kwargs) -> None:
    """Signing out ends this session and closes its open sockets; the member's other sessions
    stay, and the sessions page can end those."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        end_signed_out_session(session_key=session_key)


@receiver(password_changed, dispatch_uid="community_end_sessions_on_password_changed")
@receiver(password_set, dispatch_uid="community_end_sessions_on_password_set")
@receiver(password_reset, dispatch_uid="community_end_sessions_on_password_reset")
def end_sessions_on_new_password(sender, request, user, **kwargs) -> None:
    """A new password ends every session, this browser's too (``ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE``
    signs it out as well): whoever knew the old password is out everywhere, sockets included."""
    end_every_session(user, reason="password_changed")
