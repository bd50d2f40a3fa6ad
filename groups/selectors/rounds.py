"""Reads about go-around rounds: the state everyone in the room sees, and who a facilitator can
give a turn to right now.

A round's state is built once per change for the whole room (``round_payload``) and then
personalised for each reader (``round_for_viewer``) without another query, the way chat
messages are: the broadcast carries user ids the consumer needs (whose turn, who facilitates)
and ``round_for_viewer`` turns them into ``own``, ``your_turn`` and ``can_facilitate`` and
never passes an id on. Members see display names only.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.selectors import blocked_by_ids
from groups.models import (
    Group,
    Membership,
    MembershipStatus,
    Role,
    Round,
    RoundState,
    TurnStatus,
)
from groups.selectors.chat import access_room_membership

__all__ = [
    "ROUND_SHOWN_AFTER_END",
    "latest_round_payload",
    "room_round",
    "round_candidates",
    "round_for_viewer",
    "round_participants",
    "round_payload",
    "round_state",
]

# How long an ended round stays in the room's panel (with who shared and who passed) before the
# panel goes back to "no round"; a reader who arrives later sees a quiet panel, not old news.
ROUND_SHOWN_AFTER_END = timedelta(minutes=30)

NO_ROUND_STATE = "none"


def _facilitator_ids(group_id: int) -> list[int]:
    return list(
        Membership.objects.filter(
            group_id=group_id,
            role=Role.FACILITATOR,
            status=MembershipStatus.ACTIVE,
            user__is_active=True,
        ).values_list("user_id", flat=True)
    )


def round_payload(group_id: int, round_: Round | None) -> dict:
    """Broadcast-ready state of ``round_`` (or of "no round" when None) for the whole room.

    ``turns[].user_id`` and ``facilitator_ids`` are for the consumer only: ``round_for_viewer``
    strips them. ``current`` is the position whose turn it is (None unless the round is active).
    """
    payload = {
        "id": None,
        "prompt": "",
        "state": NO_ROUND_STATE,
        "version": 0,
        "turns": [],
        "current": None,
        "facilitator_ids": _facilitator_ids(group_id),
    }
    if round_ is None:
        return payload
    turns = list(
        round_.turns.select_related("user")
        .only("position", "status", "user_id", "user__display_name")
        .order_by("position")
    )
    active = round_.state == RoundState.ACTIVE
    payload.update(
        id=round_.pk,
        prompt=round_.prompt,
        state=round_.state,
        version=round_.version,
        turns=[
            {
                "position": turn.position,
                "name": turn.user.display_name,
                "status": turn.status,
                "user_id": turn.user_id,
            }
            for turn in turns
        ],
        current=next(
            (t.position for t in turns if active and t.status == TurnStatus.CURRENT), None
        ),
    )
    return payload


def latest_round_payload(group_id: int) -> dict:
    """The room's round as the panel shows it: the active one, or one that ended in the last
    ``ROUND_SHOWN_AFTER_END``; otherwise "no round"."""
    latest = Round.objects.filter(group_id=group_id).order_by("-pk").first()
    if (
        latest is not None
        and latest.state == RoundState.ENDED
        and latest.ended_at < timezone.now() - ROUND_SHOWN_AFTER_END
    ):
        latest = None
    return round_payload(group_id, latest)


def round_for_viewer(payload: dict, *, viewer_id: int) -> dict:
    """What one reader receives: display names, ``own`` for their own turn, ``your_turn`` and
    ``can_facilitate``; no user ids."""
    turns = [
        {
            "position": turn["position"],
            "name": turn["name"],
            "status": turn["status"],
            "own": turn["user_id"] == viewer_id,
        }
        for turn in payload["turns"]
    ]
    return {
        "id": payload["id"],
        "prompt": payload["prompt"],
        "state": payload["state"],
        "version": payload["version"],
        "turns": turns,
        "current": payload["current"],
        "your_turn": any(t["own"] and t["position"] == payload["current"] for t in turns),
        "can_facilitate": viewer_id in payload["facilitator_ids"],
    }


def _active_member(group: Group, user) -> Membership:
    membership = (
        Membership.objects.filter(
            group=group, user=user, status=MembershipStatus.ACTIVE, user__is_active=True
        )
        .select_related("user")
        .first()
    )
    if membership is None:
        raise PermissionDenied(_("This space is for the group's members."), code="not_member")
    return membership


def round_state(group: Group, *, viewer) -> dict:
    """The room's round as ``viewer`` (an active member) sees it."""
    _active_member(group, viewer)
    return round_for_viewer(latest_round_payload(group.pk), viewer_id=viewer.pk)


def room_round(membership_id: int) -> dict:
    """Authorise the socket's membership, then the room's round for the whole room (the consumer
    personalises it with ``round_for_viewer``)."""
    membership = access_room_membership(membership_id)
    return latest_round_payload(membership.group_id)


def round_participants(group: Group) -> list[Membership]:
    """The memberships that would get a turn if a round started now, in join order.

    Active members with a fresh socket in the room who show their presence. Members who hid
    their presence are left out: listing them in a round would tell the room they are here.
    Raises DomainError ``presence_unavailable`` when Redis can't be read.
    """
    # Imported here: groups.services imports this package while it loads.
    import redis

    from groups.services.presence import present_user_ids

    try:
        present = present_user_ids(group.pk)
    except (redis.RedisError, OSError):
        raise DomainError(
            _(
                "We can't tell who's in the room just now, so the round didn't start. Please "
                "try again in a moment."
            ),
            code="presence_unavailable",
        ) from None
    if not present:
        return []
    return list(
        Membership.objects.filter(
            group=group,
            user_id__in=present,
            status=MembershipStatus.ACTIVE,
            user__is_active=True,
            hide_presence=False,
        )
        .select_related("user")
        .order_by("joined_at", "pk")
    )


def round_candidates(group: Group, *, viewer) -> list[dict]:
    """For a facilitator's start form: who is here now, in join order, as
    ``{"id": membership id, "name": display name}`` (the ids an ``order`` names)."""
    membership = _active_member(group, viewer)
    if membership.role != Role.FACILITATOR:
        raise PermissionDenied(
            _(
                "Rounds are started and guided by the group's facilitators. You're welcome to "
                "take part when one begins."
            ),
            code="not_facilitator",
        )
    # Who is here, as the facilitator's presence list shows it: without anyone who blocked
    # them (``start_round`` gives those no turn, as for a member who hid their presence).
    hidden_from_me = blocked_by_ids(viewer.pk)
    return [
        {"id": m.pk, "name": m.user.display_name}
        for m in round_participants(group)
        if m.user_id not in hidden_from_me
    ]
