"""Reads of a member's personal content boundaries (the topics they want softened)."""

from __future__ import annotations

from groups.models import RoomPreference, SensitiveTopic

__all__ = ["content_boundaries", "known_topics"]


def content_boundaries(user) -> frozenset[str]:
    """The topics ``user`` asked to have softened: their own choice, read by them only (the
    room and the boundaries page pass the signed-in member). Unknown stored values are left
    out, so a topic retired from the list never folds anything."""
    if user is None or not user.is_authenticated:
        return frozenset()
    stored = (
        RoomPreference.objects.filter(user=user).values_list("soften_topics", flat=True).first()
    )
    return known_topics(stored)


def known_topics(values) -> frozenset[str]:
    """``values`` (a stored JSON list) narrowed to today's ``SensitiveTopic`` values."""
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v for v in values if isinstance(v, str) and v in SensitiveTopic.values)
