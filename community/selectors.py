"""Reads about members and the help resources."""

from __future__ import annotations

import contextlib

from django.core.cache import cache
from django.db.models import Q, Value
from django.db.models.functions import Lower

from community.models import Block, CrisisResource, Mute, User

CRISIS_CACHE_KEY = "community:crisis-resources:v1"


def public_member(user: User) -> dict:
    """Everything another member may learn about ``user``: the display name, nothing else."""
    return {"name": user.display_name}


def display_name_taken(name: str, *, exclude: User | None = None) -> bool:
    qs = User.objects.annotate(lname=Lower("display_name")).filter(lname=name.lower())
    if exclude is not None and exclude.pk:
        qs = qs.exclude(pk=exclude.pk)
    return qs.exists()


def crisis_resources() -> list[dict]:
    """The shown crisis resources, cached briefly: the footer of every page needs them.

    If the cache (Redis) is down the resources still come from the database: help must show.
    """
    try:
        cached = cache.get(CRISIS_CACHE_KEY)
    except Exception:  # the cache is an optimisation; Redis being down must not hide help
        cached = None
    if cached is not None:
        return cached
    resources = list(
        CrisisResource.objects.filter(is_active=True).values(
            "name", "region", "description", "phone", "text", "url"
        )
    )
    # As above: a cache failure must not break the page.
    with contextlib.suppress(Exception):
        cache.set(CRISIS_CACHE_KEY, resources, timeout=300)
    return resources


def forget_crisis_resources() -> None:
    """Drop the cached list after an edit, so every footer shows the change at once."""
    with contextlib.suppress(Exception):
        cache.delete(CRISIS_CACHE_KEY)


# --- Notifications --------------------------------------------------------------------------------

NOTIFICATIONS_PER_PAGE = 20


def unread_notification_count(user) -> int:
    """How many of the member's in-app notifications are unread (0 for visitors)."""
    from community.models import Notification

    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()


def notifications_page(user, *, page: int | str | None = 1):
    """One page of the member's in-app notifications, newest first (out-of-range → last page)."""
    from django.core.paginator import Paginator

    from community.models import Notification

    qs = Notification.objects.filter(user=user, in_app=True).order_by("-created_at", "-id")
    return Paginator(qs, NOTIFICATIONS_PER_PAGE).get_page(page)


# --- Blocks and mutes ------------------------------------------------------------------------


def blocked_either_way(user_id: int, other_id: int) -> bool:
    """Whether either of the two blocked the other. Used wherever one could reach the other
    (invitations, 1:1 rooms), so a block never says which side made it."""
    return Block.objects.filter(
        Q(user_id=user_id, blocked_id=other_id) | Q(user_id=other_id, blocked_id=user_id)
    ).exists()


def muted_ids(user_id: int) -> frozenset[int]:
    """The people ``user_id`` muted or blocked (a block includes a mute)."""
    muted = Mute.objects.filter(user_id=user_id).values_list("muted_id", flat=True)
    blocked = Block.objects.filter(user_id=user_id).values_list("blocked_id", flat=True)
    return frozenset(muted) | frozenset(blocked)


def blocked_by_ids(user_id: int) -> frozenset[int]:
    """The people who blocked ``user_id``: their presence is not shown to ``user_id``. For
    server-side filtering only; never sent anywhere."""
    return frozenset(Block.objects.filter(blocked_id=user_id).values_list("user_id", flat=True))


def mutes_and_blockers(user_id: int) -> tuple[frozenset[int], frozenset[int]]:
    """``(muted_ids(user_id), blocked_by_ids(user_id))`` in one query: the room socket re-reads
    both on its periodic check, so a lost ``people.changed`` event costs seconds, not a
    reconnect. Server-side only, like ``blocked_by_ids``."""
    return mutes_and_blockers_of([user_id])[user_id]


def mutes_and_blockers_of(
    user_ids,
) -> dict[int, tuple[frozenset[int], frozenset[int]]]:
    """``mutes_and_blockers`` for many members at once, in one query (the room sockets' batched
    periodic check): user id -> (muted or blocked by them, who blocked them)."""
    user_ids = list(user_ids)
    muted = Mute.objects.filter(user_id__in=user_ids).annotate(side=Value("m"))
    blocked = Block.objects.filter(user_id__in=user_ids).annotate(side=Value("m"))
    blockers = Block.objects.filter(blocked_id__in=user_ids).annotate(side=Value("b"))
    rows = muted.order_by().values_list("user_id", "muted_id", "side")
    rows = rows.union(
        blocked.order_by().values_list("user_id", "blocked_id", "side"),
        blockers.order_by().values_list("blocked_id", "user_id", "side"),
        all=True,
    )
    found: dict[int, tuple[set[int], set[int]]] = {uid: (set(), set()) for uid in user_ids}
    for owner, other, side in rows:
        found[owner][0 if side == "m" else 1].add(other)
    return {uid: (frozenset(m), frozenset(b)) for uid, (m, b) in found.items()}
