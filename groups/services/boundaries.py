"""A member's personal content boundaries: the sensitive topics they'd like softened.

A softened message arrives folded for that member only, naming its topic, and opens on a tap.
The choice is stored on the member's ``RoomPreference`` and applies in every room. Open sockets
hear about a change at once (``boundaries.changed`` on the member's user group), so new messages
fold the new way without a reconnect.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.realtime import BOUNDARIES_CHANGED, send_event_on_commit, user_channel_group
from groups.models import RoomPreference, SensitiveTopic

__all__ = ["set_content_boundaries"]

logger = logging.getLogger(__name__)


def _clean_topics(topics) -> list[str]:
    if topics is None:
        return []
    if isinstance(topics, str) or not isinstance(topics, list | tuple | set | frozenset):
        raise DomainError(
            _("Choose the topics as a list from the ones offered."), code="bad_topics"
        )
    unknown = [t for t in topics if not (isinstance(t, str) and t in SensitiveTopic.values)]
    if unknown:
        raise DomainError(
            _(
                "“%(topic)s” isn't one of the topics you can choose to soften. Nothing was "
                "changed; please pick from the list."
            )
            % {"topic": str(unknown[0])[:40]},
            code="unknown_topic",
        )
    chosen = set(topics)
    return [value for value in SensitiveTopic.values if value in chosen]


@transaction.atomic
def set_content_boundaries(user, *, actor, topics) -> list[str]:
    """Choose the topics ``user`` wants softened (any of ``SensitiveTopic``; empty: none).

    Returns the stored list in the offered order. Raises DomainError ``unknown_topic`` (nothing
    changed) for a value outside the list, PermissionDenied unless ``actor`` is ``user``: a
    member's boundaries are theirs alone to set.
    """
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied(
            _("Only you can choose which topics are softened for you."), code="not_yours"
        )
    chosen = _clean_topics(topics)
    preference, _created = RoomPreference.objects.get_or_create(user=user)
    updated = RoomPreference.objects.filter(pk=preference.pk).update(soften_topics=chosen)
    if updated != 1:  # the row was deleted under us (the account went): change nothing
        raise DomainError(_("We couldn't save that just now. Please try again."), code="retry")
    send_event_on_commit(user_channel_group(user.pk), {"type": BOUNDARIES_CHANGED})
    logger.info("Content boundaries changed: user=%s", user.pk)  # which ones is theirs alone
    return chosen
