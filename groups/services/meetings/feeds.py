"""Private calendar feeds: each member's token, made on first use and revocable."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from groups.models import (
    CalendarFeed,
    new_token,
)

# --- Calendar feeds -------------------------------------------------------------------------


def calendar_feed_for(user) -> CalendarFeed:
    """The member's private feed, made on first use."""
    feed, _created = CalendarFeed.objects.get_or_create(user=user)
    return feed


@transaction.atomic
def revoke_calendar_feed(user) -> CalendarFeed:
    """Replace the feed's token: the old address stops working at once."""
    feed = CalendarFeed.objects.select_for_update().filter(user=user).first()
    if feed is None:
        return CalendarFeed.objects.create(user=user)
    feed.token = new_token()
    feed.created_at = timezone.now()
    feed.save(update_fields=["token", "created_at"])
    return feed
