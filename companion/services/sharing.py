"""Posting a rehearsed share to one of the member's circles: only when they press "Post it",
never by itself.

The share is posted as the member's own message through ``groups.services.post_message``, so
the circle's rules apply as to anything they write there (membership, agreement, mute, rate
limit, moderation's screening). Its ``client_id`` is the draft's, so pressing twice (or a
retry after a dropped connection) posts it once.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from companion.models import PracticeSpace
from groups.models import GroupKind, Message
from groups.selectors import access_group_as_member
from groups.services import post_message

__all__ = ["post_rehearsed_share"]

logger = logging.getLogger(__name__)


def post_rehearsed_share(user, *, actor, group_slug: str, content_warning: str = "") -> Message:
    """Post ``user``'s rehearsed share to their circle ``group_slug`` as their own message.

    Preconditions checked here: the actor is the member, a draft is saved, the circle is one
    of theirs (and allows them to post now), and the draft wasn't already posted elsewhere.
    Posting it again to the same circle returns the message already there.
    """
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied(_("Only you can post your rehearsed share."), code="not_yours")
    space = PracticeSpace.objects.select_related("draft_posted_to").filter(user=user).first()
    if space is None or not space.draft:
        raise DomainError(
            _(
                "There's no rehearsed share to post yet. You can practise one with the "
                "companion first; it's only posted when you choose."
            ),
            code="no_draft",
        )
    group, _membership = access_group_as_member(group_slug, user)
    if group.kind != GroupKind.CIRCLE:
        raise NotFound(_("We couldn't find that group."), code="group_not_found")
    if space.draft_posted_to_id not in (None, group.pk):
        raise DomainError(
            _("You've already posted this share to %(group)s. You could rehearse a new one.")
            % {"group": space.draft_posted_to.name},
            code="already_posted",
        )
    result = post_message(
        group,
        author=user,
        client_id=space.draft_client_id,
        body=space.draft,
        content_warning=content_warning,
    )
    PracticeSpace.objects.filter(
        pk=space.pk, draft_client_id=space.draft_client_id, draft_posted_at__isnull=True
    ).update(draft_posted_at=timezone.now(), draft_posted_to=group)
    logger.info("practice space %s: share posted to group %s", space.pk, group.pk)
    return result.message
