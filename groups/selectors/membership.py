"""Who belongs to which group, and what they may do there."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import NotFound, PermissionDenied
from groups.models import (
    Group,
    GroupKind,
    Invite,
    JoinRequest,
    Membership,
    MembershipStatus,
    RequestStatus,
    Role,
    WaitlistEntry,
    WaitStatus,
)

__all__ = [
    "GroupPageState",
    "access_group_as_member",
    "access_group_to_manage",
    "active_membership",
    "can_manage_group",
    "directory_groups",
    "ensure_may_come_back",
    "ensure_may_create_groups",
    "facilitated_groups",
    "get_group",
    "group_page_state",
    "in_practice_room",
    "invite_for_token",
    "may_create_groups",
    "membership_for",
    "my_memberships",
    "pending_requests",
    "seats_taken",
]


_ROOM_KINDS = [GroupKind.CIRCLE, GroupKind.PAIR, GroupKind.PRACTICE]


def get_group(slug: str, *, include_pairs: bool = False) -> Group:
    """The circle at ``slug``. A private room (a safe-person pair's, or a member's practice
    space) is only found with ``include_pairs`` (the room itself and moderation): group pages,
    joining, meetings and check-ins are for circles, and a private room's address must not
    lead anywhere else."""
    kinds = _ROOM_KINDS if include_pairs else [GroupKind.CIRCLE]
    group = Group.objects.filter(slug=slug, kind__in=kinds).first()
    if group is None:
        raise NotFound(_("We couldn't find that group."), code="group_not_found")
    return group


def in_practice_room(message) -> bool:
    """Is ``message`` in a member's practice space (a room of kind ``practice``, whose words
    nobody else reads)? Free when the message carries its group, as ``post_message``'s does."""
    if type(message).group.is_cached(message):
        return message.group.kind == GroupKind.PRACTICE
    return Group.objects.filter(pk=message.group_id, kind=GroupKind.PRACTICE).exists()


def membership_for(group: Group, user) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(group=group, user=user).select_related("group").first()


def active_membership(group: Group, user) -> Membership | None:
    membership = membership_for(group, user)
    return membership if membership is not None and membership.is_active else None


def can_manage_group(user, group: Group) -> bool:
    """Site moderators (staff) and the group's active facilitators manage a group."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    return Membership.objects.filter(
        group=group, user=user, role=Role.FACILITATOR, status=MembershipStatus.ACTIVE
    ).exists()


def may_create_groups(user) -> bool:
    """Site moderators and anyone who already facilitates a group may start a new one."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    return Membership.objects.filter(
        user=user, role=Role.FACILITATOR, status=MembershipStatus.ACTIVE
    ).exists()


def ensure_may_create_groups(user) -> None:
    """Refuse (PermissionDenied ``not_facilitator``) someone who may not start a group, before
    they write one out."""
    if not may_create_groups(user):
        raise PermissionDenied(
            _("Groups are started by facilitators and site moderators."), code="not_facilitator"
        )


def ensure_may_come_back(membership: Membership | None) -> None:
    """Refuse (PermissionDenied ``not_allowed_back``) someone a moderator removed from the
    group or banned from it: coming back is not theirs to decide alone. ``membership`` is the
    person's row in the group, whatever its status, or None."""
    if membership is not None and membership.status in (
        MembershipStatus.REMOVED,
        MembershipStatus.BANNED,
    ):
        raise PermissionDenied(
            _(
                "You can't rejoin this group yourself after a moderator's decision. "
                "If you'd like to talk about it, you can reply to the moderators' note."
            ),
            code="not_allowed_back",
        )


def facilitated_groups(user):
    if not user.is_authenticated:
        return Group.objects.none()
    if user.is_staff:
        return Group.objects.all()
    return Group.objects.filter(
        memberships__user=user,
        memberships__role=Role.FACILITATOR,
        memberships__status=MembershipStatus.ACTIVE,
    )


def access_group_as_member(slug: str, user) -> tuple[Group, Membership]:
    """The group and the caller's active membership, or a kind refusal.

    Site moderators who are not members are refused here too: reading a group's room is for
    its members; moderators see content through the moderation queue. Pair rooms (safe
    persons) are found here too: their two people are its members; and practice rooms, whose
    one member is the member who practises there.
    """
    # One query for the usual case, an active member (every room page and socket); the group
    # is read on its own only to tell "no such group" from "not a member".
    membership = _room_membership(slug, user) if user.is_authenticated else None
    if membership is None:
        get_group(slug, include_pairs=True)  # NotFound when there is no such group
        raise PermissionDenied(_("This space is for the group's members."), code="not_member")
    return membership.group, membership


def _room_membership(slug: str, user) -> Membership | None:
    """``user``'s active membership of the room group at ``slug``, its group loaded: what
    ``Membership.objects.filter(group__slug=slug, group__kind__in=_ROOM_KINDS, user=user,
    status=ACTIVE).select_related("group").first()`` reads, or None.

    In SQL, read into the same model instances: every room page and socket starts here, and
    the ORM spent about a millisecond building this query, several times the database's time.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _room_membership_sql(), [slug, *_ROOM_KINDS, user.pk, MembershipStatus.ACTIVE]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(Membership._meta.concrete_fields)
    membership = _instance(Membership, row[:width])
    membership.group = _instance(Group, row[width:])
    return membership


@functools.cache
def _room_membership_sql() -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(
        [f"m.{qn(f.column)}" for f in Membership._meta.concrete_fields]
        + [f"g.{qn(f.column)}" for f in Group._meta.concrete_fields]
    )
    kinds = ", ".join(["%s"] * len(_ROOM_KINDS))
    memberships, groups = qn(Membership._meta.db_table), qn(Group._meta.db_table)
    return (
        f"SELECT {columns} FROM {memberships} m JOIN {groups} g ON g.id = m.group_id "  # noqa: S608 -- only the models' table and column names; values are parameters
        f"WHERE g.slug = %s AND g.kind IN ({kinds}) AND m.user_id = %s AND m.status = %s "
        f"ORDER BY m.id LIMIT 1"
    )


def _instance(model, values):
    """A ``model`` instance from the database's values of its concrete fields, in their order,
    converted as the ORM converts them (SQLite hands back times, UUIDs and JSON as text)."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        for step in (
            *connection.ops.get_db_converters(column),
            *field.get_db_converters(connection),
        ):
            value = step(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def access_group_to_manage(slug: str, user) -> Group:
    group = get_group(slug)
    if not can_manage_group(user, group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    return group


def seats_taken(group: Group, *, now=None) -> int:
    """Active members plus seats held for a waitlisted person whose offer is still open."""
    now = now or timezone.now()
    members = Membership.objects.filter(group=group, status=MembershipStatus.ACTIVE).count()
    held = WaitlistEntry.objects.filter(
        group=group, status=WaitStatus.OFFERED, offer_expires_at__gt=now
    ).count()
    return members + held


def pending_requests(group: Group):
    return JoinRequest.objects.filter(group=group, status=RequestStatus.PENDING).select_related(
        "user"
    )


def with_member_counts(queryset):
    return queryset.annotate(
        member_count=Count("memberships", filter=Q(memberships__status=MembershipStatus.ACTIVE))
    )


def directory_groups(*, topic: str = "", q: str = ""):
    """Listed, open-for-business groups with their member counts, for the directory."""
    groups = with_member_counts(
        Group.objects.filter(kind=GroupKind.CIRCLE, is_listed=True, archived_at__isnull=True)
    )
    if topic:
        groups = groups.filter(topic=topic)
    if q:
        groups = groups.filter(name__icontains=q)
    return groups.order_by("name")


def my_memberships(user):
    if not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.filter(
            user=user, status=MembershipStatus.ACTIVE, group__kind=GroupKind.CIRCLE
        )
        .select_related("group")
        .order_by("group__name")
    )


def invite_for_token(token: str) -> Invite:
    """The invitation behind a link; expired and withdrawn ones still resolve (to explain)."""
    invite = Invite.objects.select_related("group").filter(token=token).first()
    if invite is None:
        raise NotFound(
            _("This invitation link doesn't work. You could ask the facilitator for a new one."),
            code="invite_not_found",
        )
    return invite


@dataclass(frozen=True)
class GroupPageState:
    """Everything the group page needs to know about the viewer's place in the group."""

    membership: Membership | None
    pending_request: JoinRequest | None
    waitlist_entry: WaitlistEntry | None
    seats_taken: int
    can_manage: bool

    @property
    def is_member(self) -> bool:
        return self.membership is not None and self.membership.is_active

    @property
    def needs_agreement(self) -> bool:
        return self.is_member and not self.membership.agreement_is_current()


def group_page_state(group: Group, user) -> GroupPageState:
    membership = membership_for(group, user)
    request = waiting = None
    if user.is_authenticated:
        request = JoinRequest.objects.filter(
            group=group, user=user, status=RequestStatus.PENDING
        ).first()
        waiting = WaitlistEntry.objects.filter(
            group=group, user=user, status__in=[WaitStatus.WAITING, WaitStatus.OFFERED]
        ).first()
    return GroupPageState(
        membership=membership,
        pending_request=request,
        waitlist_entry=waiting,
        seats_taken=seats_taken(group),
        can_manage=can_manage_group(user, group),
    )
