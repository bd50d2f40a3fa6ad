"""Private rooms: a room that is not a support group, made for one or two members by another
service (a safe-person connection's room, a member's practice space).

Such a room is unlisted and invitation only, has a short fixed agreement its members accepted
when it was made, and exactly the given members. It is an ordinary ``Group`` otherwise, so the
room socket, ``seq`` and resume, presence and "I need help now" work in it unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from groups.models import AgreementVersion, Group, JoinPolicy, Membership, Role, Topic

__all__ = ["create_private_room"]


def create_private_room(
    *, kind: str, name: str, agreement: str, members: Sequence, now: datetime
) -> Group:
    """Make the room with ``members`` as its active members, each having accepted ``agreement``.

    Preconditions: inside the caller's transaction, which has checked that these members may
    have the room (the caller owns that rule); ``kind`` is a ``GroupKind`` whose rooms are
    private. The slug starts with the kind and is unguessable (the room is unlisted).
    """
    room = Group.objects.create(
        kind=kind,
        name=name,
        slug=f"{kind}-{secrets.token_hex(10)}",
        topic=Topic.CONNECTION,
        description="",
        agreement=agreement,
        # The smallest the capacity constraint allows; a practice space's one member is alone.
        capacity=max(2, len(members)),
        join_policy=JoinPolicy.INVITE,
        is_listed=False,
        created_at=now,
    )
    AgreementVersion.objects.create(group=room, version=1, text=agreement, created_at=now)
    Membership.objects.bulk_create(
        Membership(
            group=room,
            user=user,
            role=Role.MEMBER,
            agreement_version=1,
            agreement_accepted_at=now,
            joined_at=now,
        )
        for user in members
    )
    return room
