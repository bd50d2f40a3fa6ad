"""Rate limits for our own services, counted in the Redis cache: chat posts, reports, join
requests, invitation links. (Sign-in, sign-up and password resets are allauth's own limits,
``ACCOUNT_RATE_LIMITS`` in settings, kept in the same cache.)

Each limit is a sliding window estimated from two fixed ones: this window's count plus the last
one's, weighted by how much of it still overlaps (fixed windows alone let a burst that straddles
a boundary through at twice the rate). A refused action is not counted, so retrying doesn't push
the wait out.

If Redis is unreachable the action goes through (and is logged): limits protect people from
floods; they must not turn a Redis outage into lost messages or refused reports.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

import redis
from django.core.cache import cache
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext

from community.errors import DomainError

__all__ = [
    "Limit",
    "client_ip",
    "enforce",
    "ip_key",
    "private_key",
    "seconds_until_allowed",
    "wait_phrase",
]

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (redis.RedisError, OSError, ValueError)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` actions in any ``window`` seconds, per key, for one ``scope``."""

    scope: str
    count: int
    window: int


def enforce(*buckets: tuple[Limit, object], message: str) -> None:
    """Count one action in every ``(limit, key)`` bucket, or refuse it.

    A bucket whose key is None is skipped (no IP address known, for example). When any bucket is
    over its limit, nothing is counted anywhere and ``DomainError(code="rate_limited",
    retry_after=seconds)`` is raised with ``message`` formatted with ``%(seconds)s`` (a number)
    and ``%(wait)s`` (words: "3 minutes"). Precondition: ``message`` is already translated.
    """
    now = time.time()
    windows, named = [], []
    for limit, key in buckets:
        if key is None:
            continue
        window, offset = divmod(now, limit.window)
        window = int(window)
        name = f"rate:{limit.scope}:{key}"
        windows.append((f"{name}:{window}", f"{name}:{window - 1}", limit.window * 2))
        named.append((f"{name}:{window}", limit, offset))
    if not windows:
        return
    try:
        # One Redis round trip for every bucket (this runs for every chat message).
        counts = cache.count_windows(windows)
    except _CACHE_ERRORS:
        logger.warning(
            "Rate limits %s unavailable; allowing the action.",
            ", ".join(limit.scope for _key, limit, _offset in named),
        )
        return
    counted = [
        (key, limit, count, previous, offset)
        for (key, limit, offset), (count, previous) in zip(named, counts, strict=True)
    ]

    waits = [
        seconds_until_allowed(limit=limit, previous=previous, count=count - 1, offset=offset)
        for _key, limit, count, previous, offset in counted
        if previous * (1 - offset / limit.window) + count > limit.count
    ]
    if not waits:
        return
    for key, *_rest in counted:
        with contextlib.suppress(*_CACHE_ERRORS):
            cache.decr(key)  # a refused action isn't an action
    retry_after = max(waits)
    raise DomainError(
        message % {"seconds": retry_after, "wait": wait_phrase(retry_after)},
        code="rate_limited",
        retry_after=retry_after,
    )


def seconds_until_allowed(*, limit: Limit, previous: int, count: int, offset: float) -> int:
    """How long until one more action fits the sliding window, if nothing else happens.

    ``count`` is this window's accepted actions, ``previous`` the last window's; ``offset`` is how
    many seconds into this window we are.
    """
    w, most = limit.window, limit.count
    if count < most and previous:
        # Later in this window, once enough of the last one has slid out.
        wait = w * (1 - (most - count - 1) / previous) - offset
    else:
        # In the next window, once enough of this one has slid out.
        wait = (w - offset) + w * max(0.0, 1 - (most - 1) / max(count, 1))
    return max(1, math.ceil(wait))


def wait_phrase(seconds: int) -> str:
    """A wait in words, rounded up: "40 seconds", "3 minutes", "2 hours"."""
    if seconds < 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    if seconds < 90 * 60:
        minutes = math.ceil(seconds / 60)
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = math.ceil(seconds / 3600)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


def client_ip(request) -> str | None:
    """The client's IP address as allauth's own rate limits see it: ``REMOTE_ADDR``, or, behind
    a proxy, the address the proxy reports (settings ``ALLAUTH_TRUSTED_PROXY_COUNT`` /
    ``ALLAUTH_TRUSTED_CLIENT_IP_HEADER``). None when there is none."""
    from allauth.account.adapter import get_adapter
    from django.core.exceptions import PermissionDenied as NoClientIP

    try:
        return get_adapter(request).get_client_ip(request)
    except NoClientIP:
        return None


def ip_key(ip: str | None) -> str | None:
    """A rate-limit key for an IP address: IPv6 addresses count per /64 (one household or one
    server has a whole /64 to rotate through), and the address is keyed through an HMAC so no
    IP address is written to Redis."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.version == 6:
        address = ipaddress.IPv6Network(f"{address}/64", strict=False).network_address
    return private_key(str(address))


def private_key(value: str) -> str:
    """A rate-limit key for something private (an IP or email address): an HMAC with the
    secret key, so Redis never holds the value itself."""
    return salted_hmac("community.ratelimits", value).hexdigest()[:32]
