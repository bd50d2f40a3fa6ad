"""Meetings, occurrences and RSVPs as members and facilitators see them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, Min, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import NotFound, PermissionDenied
from groups.models import (
    CalendarFeed,
    Group,
    Meeting,
    Membership,
    MembershipStatus,
    Occurrence,
    OccurrenceStatus,
    Rsvp,
    RsvpAnswer,
)
from groups.selectors.membership import active_membership, can_manage_group

__all__ = [
    "access_meeting",
    "access_meeting_to_manage",
    "access_occurrence",
    "access_occurrence_to_manage",
    "calendar_feed_for_token",
    "feed_occurrences",
    "group_meetings",
    "meeting_occurrences",
    "next_meeting_times",
    "next_occurrences",
    "upcoming_occurrences",
]


def _upcoming(now=None):
    """Sittings not yet over, of meetings whose series still runs."""
    return Occurrence.objects.filter(
        ends_at__gt=now or timezone.now(), meeting__cancelled_at__isnull=True
    )


def _scheduled_ahead(groups: Iterable[Group]):
    """The scheduled, not-yet-ended sittings of ``groups``."""
    return _upcoming(timezone.now()).filter(
        status=OccurrenceStatus.SCHEDULED, meeting__group_id__in=[g.pk for g in groups]
    )


def next_occurrences(groups: Iterable[Group]) -> dict[int, Occurrence]:
    """The next scheduled, not-yet-ended sitting per group id, in one query.

    Groups with nothing coming up are absent from the result. Public facts only (title and
    time), so no permission check: the directory shows them to everyone.
    """
    groups = list(groups)
    if not groups:
        return {}
    scheduled = _scheduled_ahead(groups)
    first = (
        scheduled.filter(meeting__group_id=OuterRef("meeting__group_id"))
        .order_by("starts_at", "pk")
        .values("pk")[:1]
    )
    rows = scheduled.filter(pk=Subquery(first)).select_related("meeting")
    return {o.meeting.group_id: o for o in rows}


def next_meeting_times(groups: Iterable[Group]) -> dict[int, datetime]:
    """When each of ``groups`` next meets (its ``next_occurrences`` sitting's start), in one
    query: the directory's cards need only that, and the earliest start per group is about a
    third of the database's work of finding each group's first sitting (and no instances)."""
    groups = list(groups)
    if not groups:
        return {}
    rows = (
        _scheduled_ahead(groups)
        .order_by()
        .values("meeting__group_id")
        .annotate(first=Min("starts_at"))
        .values_list("meeting__group_id", "first")
    )
    return dict(rows)


def _may_see_meetings(user, group: Group) -> bool:
    return active_membership(group, user) is not None or can_manage_group(user, group)


def _refuse_unless_member(user, group: Group) -> None:
    if not _may_see_meetings(user, group):
        raise PermissionDenied(
            _("Meetings are shared with the group's members."), code="not_member"
        )


def _refuse_unless_manager(user, group: Group) -> None:
    if not can_manage_group(user, group):
        raise PermissionDenied(
            _("Only this group's facilitators can arrange its meetings."), code="not_facilitator"
        )


def _attach_rsvps(
    occurrences: list[Occurrence], *, user, with_people: bool, is_member: bool = False
) -> None:
    """Set ``my_rsvp`` (the viewer's answer or None) and ``can_rsvp`` (an active member and a
    sitting still on) on each occurrence, and for managers
    ``rsvp_counts`` ({answer: n}) and ``coming`` (display names of going/maybe, by answer).

    Members see only their own answer; the counts and names are None for them.
    """
    mine: dict[int, str] = {}
    if user.is_authenticated:
        mine = dict(
            Rsvp.objects.filter(occurrence__in=occurrences, user=user).values_list(
                "occurrence_id", "answer"
            )
        )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RsvpAnswer.values, 0))
    coming: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if with_people:
        # Only people still in the group count: someone who left isn't coming, and their name
        # shouldn't linger on the list.
        answers = (
            Rsvp.objects.filter(
                occurrence__in=occurrences,
                user__memberships__group=F("occurrence__meeting__group"),
                user__memberships__status=MembershipStatus.ACTIVE,
            )
            .order_by("user__display_name")
            .values_list("occurrence_id", "answer", "user__display_name")
        )
        for occurrence_id, answer, name in answers:
            counts[occurrence_id][answer] += 1
            if answer != RsvpAnswer.NOT_GOING:
                coming[occurrence_id].append((name, answer))
    for occurrence in occurrences:
        occurrence.my_rsvp = mine.get(occurrence.pk)
        occurrence.can_rsvp = is_member and not occurrence.is_cancelled
        occurrence.rsvp_counts = dict(counts[occurrence.pk]) if with_people else None
        occurrence.coming = coming[occurrence.pk] if with_people else None


def upcoming_occurrences(group: Group, *, user, limit: int = 5) -> list[Occurrence]:
    """The group's next sittings (a cancelled one shows as cancelled), with ``my_rsvp``.

    For active members and the group's managers; anyone else gets PermissionDenied.
    Managers also get ``rsvp_counts`` and ``coming`` on each (see ``_attach_rsvps``).
    """
    is_member = active_membership(group, user) is not None
    can_manage = can_manage_group(user, group)
    if not (is_member or can_manage):
        raise PermissionDenied(
            _("Meetings are shared with the group's members."), code="not_member"
        )
    occurrences = list(
        _upcoming()
        .filter(meeting__group=group)
        .select_related("meeting__group")
        .order_by("starts_at", "pk")[:limit]
    )
    _attach_rsvps(occurrences, user=user, with_people=can_manage, is_member=is_member)
    return occurrences


def group_meetings(group: Group, *, user):
    """All of a group's meeting series, newest plans first, for its managers."""
    _refuse_unless_manager(user, group)
    return Meeting.objects.filter(group=group).order_by("cancelled_at", "-starts_at")


def access_meeting(group: Group, pk: int, *, user) -> Meeting:
    """A meeting of this group, for its members and managers."""
    _refuse_unless_member(user, group)
    meeting = Meeting.objects.filter(group=group, pk=pk).select_related("group").first()
    if meeting is None:
        raise NotFound(_("We couldn't find that meeting."), code="meeting_not_found")
    return meeting


def access_meeting_to_manage(group: Group, pk: int, *, user) -> Meeting:
    _refuse_unless_manager(user, group)
    return access_meeting(group, pk, user=user)


def access_occurrence(group: Group, pk: int, *, user) -> Occurrence:
    """One sitting of one of this group's meetings, for its members and managers."""
    _refuse_unless_member(user, group)
    occurrence = (
        Occurrence.objects.filter(meeting__group=group, pk=pk)
        .select_related("meeting__group")
        .first()
    )
    if occurrence is None:
        raise NotFound(_("We couldn't find that meeting."), code="occurrence_not_found")
    return occurrence


def access_occurrence_to_manage(group: Group, pk: int, *, user) -> Occurrence:
    _refuse_unless_manager(user, group)
    return access_occurrence(group, pk, user=user)


def meeting_occurrences(meeting: Meeting, *, user, upcoming_only: bool = True) -> list[Occurrence]:
    """A meeting's sittings with RSVP counts and who's coming, for the group's managers."""
    _refuse_unless_manager(user, meeting.group)
    occurrences = Occurrence.objects.filter(meeting=meeting)
    if upcoming_only:
        occurrences = occurrences.filter(ends_at__gt=timezone.now())
    occurrences = list(occurrences.order_by("starts_at", "pk"))
    _attach_rsvps(occurrences, user=user, with_people=True)
    return occurrences


def calendar_feed_for_token(token: str) -> CalendarFeed:
    """The feed behind a private address; a revoked or unknown token is simply not found."""
    feed = (
        CalendarFeed.objects.select_related("user")
        .filter(token=token, user__is_active=True)
        .first()
        if token
        else None
    )
    if feed is None:
        raise NotFound(_("This calendar address doesn't work any more."), code="feed_not_found")
    return feed


def feed_occurrences(feed: CalendarFeed) -> list[Occurrence]:
    """Every upcoming sitting (cancelled ones too, so calendars drop them) of each group the
    feed's owner is an active member of. Nobody else's answers are included."""
    group_ids = Membership.objects.filter(user=feed.user, status=MembershipStatus.ACTIVE).values(
        "group_id"
    )
    return list(
        Occurrence.objects.filter(ends_at__gt=timezone.now(), meeting__group_id__in=group_ids)
        .select_related("meeting__group")
        .order_by("starts_at", "pk")
    )
