"""Who belongs to which group, and what they may do there."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import NotFound, PermissionDenied
from groups.models import (
    Group,
    JoinRequest,
    Membership,
    MembershipStatus,
    RequestStatus,
    Role,
    WaitlistEntry,
    WaitStatus,
)

__all__ = [
    "access_group_as_member",
    "access_group_to_manage",
    "active_membership",
    "can_manage_group",
    "facilitated_groups",
    "get_group",
    "membership_for",
    "pending_requests",
    "seats_taken",
]


def get_group(slug: str) -> Group:
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise NotFound(_("We couldn't find that group."), code="group_not_found")
    return group


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
    its members; moderators see content through the moderation queue.
    """
    group = get_group(slug)
    membership = active_membership(group, user)
    if membership is None:
        raise PermissionDenied(_("This space is for the group's members."), code="not_member")
    return group, membership


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
