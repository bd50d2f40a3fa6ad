"""Ending one of a member's own signed-in sessions (allauth.usersessions).

The session's row and its stored session go (so that browser is signed out at its next request),
and its open sockets, room and ``/ws/me/`` alike, close at once through ``session.ended`` on the
session's channel group (``community.adapters.UserSessionsAdapter``).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from community.errors import NotFound

__all__ = ["end_member_session"]

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
