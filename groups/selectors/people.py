"""Reads for muting and blocking: whom a member may mute or block, whom they did, and who wrote
a message they point at in the room.

Who may be muted or blocked: someone the member shares a circle with, or once did (either may
have left since), or a safe person (live or ended). That is everyone whose words or presence
can reach them here. What is read here is the member's own: nobody learns who muted or blocked
them (``community.selectors.blocked_by_ids`` is for server-side filtering only).
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext as _

from community.errors import NotFound
from community.models import Block, Mute, User
from community.selectors import mutes_and_blockers
from groups.models import GroupKind, Membership, Message, SafeConnection

__all__ = [
    "message_author",
    "mutes_and_blockers",  # community's, re-exported for the room socket
    "my_mutes_and_blocks",
    "people_i_may_mute",
    "person_by_name",
    "shares_a_circle_or_connection",
]


def _circle_ids(user_id: int):
    """The circles ``user_id`` belongs or belonged to (any membership status)."""
    return Membership.objects.filter(user_id=user_id, group__kind=GroupKind.CIRCLE).values(
        "group_id"
    )


def _connected_ids(user_id: int) -> set[int]:
    rows = SafeConnection.objects.filter(Q(user_low_id=user_id) | Q(user_high_id=user_id))
    return {c.other(user_id) for c in rows.only("user_low_id", "user_high_id")}


def shares_a_circle_or_connection(user_id: int, other_id: int) -> bool:
    """Whether the two share a circle now or did once, or are (or were) safe persons."""
    if Membership.objects.filter(
        user_id=other_id, group_id__in=_circle_ids(user_id), group__kind=GroupKind.CIRCLE
    ).exists():
        return True
    return other_id in _connected_ids(user_id)


def people_i_may_mute(user) -> list[dict]:
    """Everyone ``user`` may mute or block (see the module docstring), active accounts only:
    ``[{"name"}]`` by name. Names only."""
    if not user.is_authenticated:
        return []
    people = (
        User.objects.filter(is_active=True)
        .filter(
            Q(memberships__group_id__in=_circle_ids(user.pk)) | Q(pk__in=_connected_ids(user.pk))
        )
        .exclude(pk=user.pk)
        .distinct()
        .order_by("display_name")
    )
    return [{"name": name} for name in people.values_list("display_name", flat=True)]


def my_mutes_and_blocks(user) -> dict[str, list[dict]]:
    """Whom ``user`` muted and whom they blocked: ``{"muted": [{"name"}], "blocked": [...]}``,
    each by name. A block includes a mute without making one, so someone blocked is listed
    under "muted" too only if the member also muted them (unblocking then leaves them muted)."""
    muted = (
        Mute.objects.filter(user=user)
        .order_by("muted__display_name")
        .values_list("muted__display_name", flat=True)
    )
    blocked = (
        Block.objects.filter(user=user)
        .order_by("blocked__display_name")
        .values_list("blocked__display_name", flat=True)
    )
    return {
        "muted": [{"name": name} for name in muted],
        "blocked": [{"name": name} for name in blocked],
    }


def person_by_name(name) -> User:
    """The member with this display name (unique, ignoring case), or NotFound. Whether they
    may be muted or blocked is the service's to decide."""
    person = None
    if isinstance(name, str) and name.strip():
        person = User.objects.filter(display_name__iexact=name.strip()).first()
    if person is None:
        raise NotFound(_("We couldn't find a member with that name."), code="member_not_found")
    return person


def message_author(membership: Membership, *, seq) -> User:
    """Who wrote message ``seq`` of ``membership``'s room, if the member can see that it is
    theirs: posted since the member joined, and not held for a moderator (a held message's
    author is shown to nobody but its author). NotFound otherwise.

    Precondition: ``membership`` is active (the caller authorised it in this request).
    """
    not_found = NotFound(_("We couldn't find that message."), code="message_not_found")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise not_found
    message = (
        Message.objects.filter(
            group_id=membership.group_id,
            seq=seq,
            created_at__gte=membership.joined_at,
            author__isnull=False,
        )
        .filter(Q(held_at__isnull=True) | Q(author_id=membership.user_id))
        .select_related("author")
        .first()
    )
    if message is None:
        raise not_found
    return message.author
