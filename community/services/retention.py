"""Retention: client IP addresses are kept no longer than ``settings.IP_RETENTION_DAYS``.

The platform stores a client's address in one place: allauth.usersessions' session records
(``UserSession.ip``, shown shortened on "Where you're signed in", and copied into a data export,
which itself is deleted after 7 days). Logs hold none (uvicorn's access log is off, and
``tests/community/test_log_privacy.py`` checks our own), and the per-IP rate limits keep only an
HMAC of the address in Redis, for at most an hour.

A record's address is the one of its last recorded activity (``last_seen_at``: every tracked
request writes both), so an address is as old as ``last_seen_at``. Past the period the address
is overwritten with ``PURGED_IP`` rather than the record deleted: the column can't be empty, and
a session that is still signed in must stay listed so its member can end it. Its next request
records the current address again, which is a new address with a new clock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

__all__ = ["PURGED_IP", "purge_old_ip_addresses"]

logger = logging.getLogger(__name__)

# The unspecified IPv6 address: no client ever has it, so it reads as "no address kept".
PURGED_IP = "::"


def purge_old_ip_addresses(*, now: datetime | None = None) -> int:
    """Overwrite the address of every session record whose last activity is older than
    ``IP_RETENTION_DAYS`` (before ``now``, the current time by default). Returns how many
    records lost an address.

    One conditional UPDATE: a record already purged isn't touched again, so running it twice
    (or two beat processes by mistake) changes nothing more; a record a request touches in the
    meantime has a new ``last_seen_at`` and no longer matches.
    """
    from allauth.usersessions.models import UserSession  # needs the app registry

    days = settings.IP_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    purged = (
        UserSession.objects.filter(last_seen_at__lt=cutoff)
        .exclude(ip=PURGED_IP)
        .update(ip=PURGED_IP)
    )
    if purged:
        logger.info(
            "purged the IP address of %d session record(s) older than %d days", purged, days
        )
    return purged
