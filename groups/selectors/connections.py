"""Reads about safe persons: one's connections (with the other's availability on one's own
clock and their current status), invitations both ways, the pair room, and what facilitators
may see.

What each side may learn: the inviter sees "not accepted yet" for an invitation that is
pending or was quietly declined, and "expired" once its 14 days pass; the invitee never sees an
invitation from someone either of them blocked. After a connection ends, each sees only that it
ended: no availability, no status, no reason. A status is seen by the member's live safe persons
and by the facilitators of the circles the member is in, nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import formats, timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _

from community.errors import NotFound, PermissionDenied
from community.models import Block, User
from groups.models import (
    AvailabilityWindow,
    Group,
    GroupKind,
    InviteStatus,
    Membership,
    MembershipStatus,
    Role,
    SafeConnection,
    SafePersonInvite,
    SafeStatus,
)
from groups.selectors.chat import access_room_membership, unread_counts

__all__ = [
    "PairRoom",
    "SafePersonView",
    "access_pair_room",
    "availability_for_viewer",
    "invitable_people",
    "invitations_for_me",
    "invitations_sent",
    "may_see_status",
    "member_by_display_name",
    "my_availability",
    "my_safe_persons",
    "my_safe_status",
    "statuses_for_facilitator",
]

SENT_SHOWN_DAYS = 30


def _zone(user) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _blocked_ids(user_id: int) -> set[int]:
    """Everyone ``user_id`` blocked or was blocked by, as one set (never which side)."""
    rows = Block.objects.filter(Q(user_id=user_id) | Q(blocked_id=user_id)).values_list(
        "user_id", "blocked_id"
    )
    return {a if b == user_id else b for a, b in rows}


def _live_partner_ids(user_id: int) -> set[int]:
    rows = SafeConnection.objects.filter(
        Q(user_low_id=user_id) | Q(user_high_id=user_id), ended_at__isnull=True
    ).values_list("user_low_id", "user_high_id")
    return {high if low == user_id else low for low, high in rows}


# --- Availability -----------------------------------------------------------------------------


def _days_label(days: list[int]) -> str:
    chosen = set(days)
    if chosen == set(range(7)):
        return _("Every day")
    if chosen == set(range(5)):
        return _("Weekdays")
    if chosen == {5, 6}:
        return _("Weekends")
    return ", ".join(str(WEEKDAYS_ABBR[d]) for d in sorted(chosen))


def _time_label(value: time) -> str:
    return formats.time_format(value, "TIME_FORMAT")


def availability_for_viewer(windows, *, owner_zone: ZoneInfo, viewer_zone: ZoneInfo, today: date):
    """``windows`` (the owner's wall clock) as the viewer's wall clock would show them, in the
    week starting ``today``: a list of ``{"days", "start", "end", "label"}``.

    Each day is converted on its own, so a window that crosses midnight for the viewer moves to
    the next day; daylight-saving differences follow the actual dates of this week.
    """
    converted: dict[tuple[time, time], set[int]] = {}
    for window in windows:
        span = datetime.combine(today, window.end) - datetime.combine(today, window.start)
        span %= timedelta(days=1)  # an end before the start runs past midnight
        for day in window.days:
            on = today + timedelta(days=(day - today.weekday()) % 7)
            start = datetime.combine(on, window.start, tzinfo=owner_zone).astimezone(viewer_zone)
            end = (start + span).astimezone(viewer_zone)
            converted.setdefault((start.time(), end.time()), set()).add(start.weekday())
    rows = sorted(converted.items(), key=lambda item: (min(item[1]), item[0][0]))
    result = []
    for (start, end), days in rows:
        days_label, start_label, end_label = (
            _days_label(list(days)),
            _time_label(start),
            _time_label(end),
        )
        result.append(
            {
                "days": days_label,
                "start": start_label,
                "end": end_label,
                "label": _("%(days)s, %(start)s to %(end)s")
                % {"days": days_label, "start": start_label, "end": end_label},
            }
        )
    return result


def my_availability(user) -> list[dict]:
    """The member's own windows as stored (their own clock), for the form and the page."""
    return [
        {
            "days": list(w.days),
            "start": w.start,
            "end": w.end,
            "label": _("%(days)s, %(start)s to %(end)s")
            % {
                "days": _days_label(w.days),
                "start": _time_label(w.start),
                "end": _time_label(w.end),
            },
        }
        for w in AvailabilityWindow.objects.filter(user=user).order_by("start", "pk")
    ]


# --- Status ---------------------------------------------------------------------------------


def my_safe_status(user, *, now=None) -> SafeStatus | None:
    now = now or timezone.now()
    return SafeStatus.objects.filter(user=user, expires_at__gt=now).first()


def _facilitates_circle_of(viewer_id: int, subject_id: int) -> bool:
    circles = Membership.objects.filter(
        user_id=viewer_id,
        role=Role.FACILITATOR,
        status=MembershipStatus.ACTIVE,
        group__kind=GroupKind.CIRCLE,
    ).values("group_id")
    return Membership.objects.filter(
        user_id=subject_id, status=MembershipStatus.ACTIVE, group_id__in=circles
    ).exists()


def may_see_status(viewer, subject) -> bool:
    """The subject themself, their live safe persons, and facilitators of their circles."""
    if not viewer.is_authenticated:
        return False
    if viewer.pk == subject.pk:
        return True
    return subject.pk in _live_partner_ids(viewer.pk) or _facilitates_circle_of(
        viewer.pk, subject.pk
    )


def statuses_for_facilitator(viewer, *, now=None) -> list[dict]:
    """Current statuses of the members of the circles ``viewer`` facilitates (not their own):
    ``[{"name", "text", "until", "circles"}]``, by name."""
    if not viewer.is_authenticated:
        return []
    now = now or timezone.now()
    circles = Group.objects.filter(
        kind=GroupKind.CIRCLE,
        archived_at__isnull=True,
        memberships__user=viewer,
        memberships__role=Role.FACILITATOR,
        memberships__status=MembershipStatus.ACTIVE,
    )
    rows = (
        Membership.objects.filter(group__in=circles, status=MembershipStatus.ACTIVE)
        .exclude(user=viewer)
        .values_list("user_id", "group__name")
    )
    circles_of: dict[int, list[str]] = {}
    for user_id, name in rows:
        circles_of.setdefault(user_id, []).append(name)
    statuses = SafeStatus.objects.filter(
        user_id__in=circles_of, expires_at__gt=now, user__is_active=True
    ).select_related("user")
    return sorted(
        (
            {
                "name": s.user.display_name,
                "text": s.text,
                "until": s.expires_at,
                "circles": sorted(circles_of[s.user_id]),
            }
            for s in statuses
        ),
        key=lambda row: row["name"].lower(),
    )


# --- Connections ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SafePersonView:
    """One connection as its viewer sees it. For an ended one, only that it ended."""

    connection_id: int
    name: str
    room_slug: str
    live: bool
    created_at: datetime
    ended_at: datetime | None = None
    availability: list[dict] = field(default_factory=list)
    status: str = ""
    status_until: datetime | None = None
    unread: int = 0
    other_zone_differs: bool = False


def _view(connection: SafeConnection, viewer, *, now, statuses, windows, unread):
    other = connection.user_high if connection.user_low_id == viewer.pk else connection.user_low
    if connection.ended_at is not None:
        return SafePersonView(
            connection_id=connection.pk,
            name=other.display_name,
            room_slug=connection.room.slug,
            live=False,
            created_at=connection.created_at,
            ended_at=connection.ended_at,
        )
    viewer_zone, other_zone = _zone(viewer), _zone(other)
    status = statuses.get(other.pk)
    return SafePersonView(
        connection_id=connection.pk,
        name=other.display_name,
        room_slug=connection.room.slug,
        live=True,
        created_at=connection.created_at,
        availability=availability_for_viewer(
            windows.get(other.pk, []),
            owner_zone=other_zone,
            viewer_zone=viewer_zone,
            today=now.astimezone(other_zone).date(),
        ),
        status=status.text if status else "",
        status_until=status.expires_at if status else None,
        unread=unread.get(connection.room_id, 0),
        other_zone_differs=other_zone.key != viewer_zone.key,
    )


def my_safe_persons(user, *, now=None) -> list[SafePersonView]:
    """The viewer's connections: live ones first (newest first), then ended ones."""
    if not user.is_authenticated:
        return []
    now = now or timezone.now()
    connections = list(
        SafeConnection.objects.filter(Q(user_low=user) | Q(user_high=user))
        .select_related("user_low", "user_high", "room")
        .order_by("-created_at")
    )
    live_others = [c.other(user.pk) for c in connections if c.ended_at is None]
    statuses = {
        s.user_id: s for s in SafeStatus.objects.filter(user_id__in=live_others, expires_at__gt=now)
    }
    windows: dict[int, list[AvailabilityWindow]] = {}
    for window in AvailabilityWindow.objects.filter(user_id__in=live_others).order_by("start"):
        windows.setdefault(window.user_id, []).append(window)
    unread = unread_counts(user)
    views = [
        _view(c, user, now=now, statuses=statuses, windows=windows, unread=unread)
        for c in connections
    ]
    return [v for v in views if v.live] + [v for v in views if not v.live]


@dataclass(frozen=True)
class PairRoom:
    """The pair room as its viewer enters it: the connection, their membership (group and user
    loaded), and the other person's view (name, availability, status; only "ended" once it has
    ended)."""

    connection: SafeConnection
    membership: Membership
    other: SafePersonView

    @property
    def live(self) -> bool:
        return self.connection.ended_at is None


def access_pair_room(slug: str, user, *, now=None) -> PairRoom:
    """The pair room ``slug`` for one of its two people (ended ones too, read-only), or
    NotFound for anyone else: a pair room's existence is nobody else's business."""
    now = now or timezone.now()
    connection = (
        SafeConnection.objects.filter(room__slug=slug, room__kind=GroupKind.PAIR)
        .filter(Q(user_low_id=user.pk) | Q(user_high_id=user.pk))
        .select_related("user_low", "user_high", "room")
        .first()
        if user.is_authenticated
        else None
    )
    if connection is None:
        raise NotFound(_("We couldn't find that conversation."), code="pair_not_found")
    membership = Membership.objects.filter(
        group_id=connection.room_id, user_id=user.pk, status=MembershipStatus.ACTIVE
    ).first()
    if membership is None:
        raise PermissionDenied(_("This conversation isn't open to you."), code="not_member")
    membership = access_room_membership(membership.pk)
    other_id = connection.other(user.pk)
    statuses = {
        s.user_id: s for s in SafeStatus.objects.filter(user_id=other_id, expires_at__gt=now)
    }
    windows = {other_id: list(AvailabilityWindow.objects.filter(user_id=other_id))}
    other = _view(
        connection, user, now=now, statuses=statuses, windows=windows, unread=unread_counts(user)
    )
    return PairRoom(connection=connection, membership=membership, other=other)


# --- Invitations ----------------------------------------------------------------------------


def invitable_people(user, *, now=None) -> list[dict]:
    """People ``user`` could invite now: active members of a live circle they share, not
    already connected or invited, no block either way. ``[{"name"}]`` by name; names only."""
    if not user.is_authenticated:
        return []
    now = now or timezone.now()
    circles = Membership.objects.filter(
        user=user,
        status=MembershipStatus.ACTIVE,
        group__kind=GroupKind.CIRCLE,
        group__archived_at__isnull=True,
    ).values("group_id")
    invited = SafePersonInvite.objects.filter(
        inviter=user,
        status__in=[InviteStatus.PENDING, InviteStatus.DECLINED],
        expires_at__gt=now,
    ).values("invitee_id")
    exclude = _blocked_ids(user.pk) | _live_partner_ids(user.pk) | {user.pk}
    people = (
        User.objects.filter(
            is_active=True,
            memberships__group_id__in=circles,
            memberships__status=MembershipStatus.ACTIVE,
        )
        .exclude(pk__in=exclude)
        .exclude(pk__in=invited)
        .distinct()
        .order_by("display_name")
    )
    return [{"name": name} for name in people.values_list("display_name", flat=True)]


def member_by_display_name(name: str) -> User:
    """The active member with this display name (names are unique, ignoring case), or
    NotFound. The services decide whether they may be invited."""
    user = User.objects.filter(display_name__iexact=name, is_active=True).first()
    if user is None:
        raise NotFound(_("We couldn't find a member with that name."), code="member_not_found")
    return user


def invitations_for_me(user, *, now=None) -> list[dict]:
    """Open invitations to ``user``: ``[{"id", "name", "note", "circle", "expires_at"}]``,
    oldest first. Never one from someone either of them blocked."""
    if not user.is_authenticated:
        return []
    now = now or timezone.now()
    invites = (
        SafePersonInvite.objects.filter(
            invitee=user,
            status=InviteStatus.PENDING,
            expires_at__gt=now,
            inviter__is_active=True,
        )
        .exclude(inviter_id__in=_blocked_ids(user.pk))
        .select_related("inviter", "via_group")
        .order_by("created_at", "pk")
    )
    return [
        {
            "id": i.pk,
            "name": i.inviter.display_name,
            "note": i.note,
            "circle": i.via_group.name if i.via_group else "",
            "expires_at": i.expires_at,
        }
        for i in invites
    ]


def invitations_sent(user, *, now=None) -> list[dict]:
    """The invitations ``user`` sent in the last 30 days (not withdrawn ones), newest first:
    ``[{"id", "name", "state", "label", "expires_at", "can_withdraw"}]``. A declined invitation
    reads exactly like a pending one ("not accepted yet") until it would have expired."""
    if not user.is_authenticated:
        return []
    now = now or timezone.now()
    invites = (
        SafePersonInvite.objects.filter(
            inviter=user, created_at__gte=now - timedelta(days=SENT_SHOWN_DAYS)
        )
        .exclude(status=InviteStatus.WITHDRAWN)
        .select_related("invitee")
        .order_by("-created_at", "-pk")
    )
    rows = []
    for invite in invites:
        if invite.status == InviteStatus.ACCEPTED:
            state = InviteStatus.ACCEPTED
        elif invite.status == InviteStatus.EXPIRED or invite.expires_at <= now:
            state = InviteStatus.EXPIRED
        else:  # pending, or declined: the inviter can't tell them apart
            state = InviteStatus.PENDING
        rows.append(
            {
                "id": invite.pk,
                "name": invite.invitee.display_name,
                "state": state.value,
                "label": str(state.label),
                "expires_at": invite.expires_at,
                "can_withdraw": state == InviteStatus.PENDING,
            }
        )
    return rows
