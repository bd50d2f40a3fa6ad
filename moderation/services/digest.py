"""The daily digest: each moderator hears once a day how many items wait in their scope."""

from __future__ import annotations

import datetime
import logging

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from moderation.models import ItemKind, ItemStatus, QueueItem
from moderation.selectors import scope_items

logger = logging.getLogger(__name__)

__all__ = ["send_moderation_digest"]


def _moderators():
    from groups.models import Membership, MembershipStatus, Role

    facilitators = Membership.objects.filter(
        role=Role.FACILITATOR, status=MembershipStatus.ACTIVE
    ).values("user_id")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(pk__in=facilitators))
        .distinct()
        .order_by("pk")
    )


def send_moderation_digest(*, now=None) -> int:
    """Tell every moderator (staff: all items; a facilitator: their groups') how many items are
    still open, by kind. Nobody with nothing open is told. One notification per moderator per
    UTC day (``digest:<date>:<user id>``), so running it twice sends nothing more.
    Returns how many moderators were told."""
    from community.services import notify

    now = now or timezone.now()
    day = now.astimezone(datetime.UTC).date()
    open_items = QueueItem.objects.exclude(status=ItemStatus.CLOSED)
    url = reverse("admin:moderation_queueitem_changelist")
    labels = dict(ItemKind.choices)
    told = 0
    for user in _moderators():
        counts = dict(
            scope_items(user, open_items).values_list("kind").annotate(n=Count("pk")).order_by()
        )
        total = sum(counts.values())
        if not total:
            continue
        lines = [f"{labels[kind]}: {counts[kind]}" for kind in ItemKind.values if counts.get(kind)]
        title = (
            "Today's moderation digest: 1 item is waiting"
            if total == 1
            else f"Today's moderation digest: {total} items are waiting"
        )
        notify(
            user,
            kind="moderator_alert",
            title=title,
            body="\n".join(lines),
            url=url,
            dedupe_key=f"digest:{day.isoformat()}:{user.pk}",
        )
        told += 1
    logger.info("moderation digest for %s: %d moderator(s) told", day.isoformat(), told)
    return told
