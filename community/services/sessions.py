"""Ending signed-in sessions (allauth.usersessions), and with them their open sockets.

The one place that decides what "ending a session" means. A session's row and its stored
session go (so that browser is signed out at its next request), and its open sockets, room and
``/ws/me/`` alike, close at once through ``session.ended`` on the session's channel group
(``community.adapters.UserSessionsAdapter``).

- ``end_member_session``: a member ends one of their own sessions (the sessions page).
- ``end_every_session``: every session of an account ends, with every socket it has open:
  after a password change, set or reset (``community.receivers``), a ban
  (``moderation.services.actions.ban_member``) and account erasure.
- ``end_signed_out_session``: signing out ends that one session, its record and its sockets
  (``community.receivers``); the member's other sessions stay.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from community.errors import NotFound
from community.realtime import (
    SESSION_ENDED,
    notification_channel_group,
    send_event_on_commit,
    session_channel_group,
    user_channel_group,
)

__all__ = ["end_every_session", "end_member_session", "end_signed_out_session"]

logger = logging.getLogger(__name__)


@transaction.atomic
def end_member_session(user, *, session_id, actor, current_session_key: str | None = None) -> bool:
    """End the session ``session_id`` of ``user``. Returns True when it was the session the
    request came from (the caller then signs that browser out too).

    Someone else's session, or one already ended, is "not found" and nothing changes: a member
    never learns whether another member's session exists.
    """
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    if actor is None or getattr(actor, "pk", None) != user.pk:
        raise NotFound(_("We couldn't find that session."), code="session_not_found")
    try:
        session_id = int(session_id)
    except (TypeError, ValueError):
        raise NotFound(_("We couldn't find that session."), code="session_not_found") from None
    session = UserSession.objects.select_for_update().filter(pk=session_id, user=user).first()
    if session is None:
        raise NotFound(
            _("We couldn't find that session; it may have ended already."),
            code="session_not_found",
        )
    is_current = bool(current_session_key) and session.session_key == current_session_key
    get_adapter().end_sessions([session])
    logger.info("member %s ended one of their sessions", user.pk)
    return is_current


def end_every_session(user, *, reason: str) -> int:
    """End every signed-in session of ``user`` and close each socket they have open.

    ``reason`` names the cause in the log (``password_changed``, ``banned``, ``erased``...).
    Returns how many recorded sessions ended. Sockets close after the caller's transaction
    commits (at once outside one). A session allauth never recorded can't outlive this either:
    Django refuses it at the next request once the password hash changed or the account is
    inactive, and the room socket's periodic check does the same within seconds.
    """
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    sessions = list(UserSession.objects.filter(user_id=user.pk))
    get_adapter().end_sessions(sessions)  # rows, stored sessions, and each one's sockets
    # Every socket of the account, whichever session opened it: room sockets listen on the
    # member's user group, ``/ws/me/`` on their notification group.
    for group in (user_channel_group(user.pk), notification_channel_group(user.pk)):
        send_event_on_commit(group, {"type": SESSION_ENDED})
    logger.info("ended %s session(s) of member %s: %s", len(sessions), user.pk, reason)
    return len(sessions)


def end_signed_out_session(*, session_key: str) -> None:
    """The browser holding ``session_key`` signed out (Django flushes the stored session
    itself): its record goes from the sessions list, with the address in it, and its sockets
    close once the caller's transaction commits."""
    from allauth.usersessions.models import UserSession

    UserSession.objects.filter(session_key=session_key).delete()
    send_event_on_commit(session_channel_group(session_key), {"type": SESSION_ENDED})
