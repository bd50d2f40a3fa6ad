"""Tell members about what groups announce (``groups.signals``), through community's ``notify``.

The signals fire after the change committed; each receiver writes its notifications in one
transaction. Dedupe keys make a repeated signal (or a second identical change) harmless.
Times are written in each member's own time zone.
"""

from __future__ import annotations

import logging
import zoneinfo

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _

from community.models import NotificationKind, NotificationPreference, User
from community.services import notify
from groups import signals
from groups.models import Group, Membership, MembershipStatus, Occurrence

logger = logging.getLogger(__name__)


def _local(when, user) -> str:
    """``when`` on the member's wall clock, e.g. "Tuesday 24 November, 19:00"."""
    try:
        zone = zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return formats.date_format(when.astimezone(zone), "l j F, H:i")


@receiver(signals.occurrence_changed, dispatch_uid="groups.notify_occurrence_changed")
def notify_occurrence_changed(sender, *, occurrence_id, change, actor_id, **kwargs):
    occurrence = (
        Occurrence.objects.select_related("meeting__group").filter(pk=occurrence_id).first()
    )
    if occurrence is None:
        logger.info("occurrence %s is gone; nobody to tell", occurrence_id)
        return
    group = occurrence.meeting.group
    members = (
        User.objects.filter(
            memberships__group=group, memberships__status=MembershipStatus.ACTIVE, is_active=True
        )
        .exclude(pk=actor_id)
        .distinct()
    )  # everyone, "not going" included: a new time may suit them
    url = reverse("groups:meetings", kwargs={"slug": group.slug})
    with transaction.atomic():
        for member in members:
            if change == "cancelled":
                title = _("%(title)s on %(when)s is cancelled") % {
                    "title": occurrence.meeting.title,
                    "when": _local(occurrence.original_start, member),
                }
                body = _(
                    "Your group “%(group)s” won't meet then. The other meetings stay as planned."
                ) % {"group": group.name}
            else:
                title = _("%(title)s has moved to %(when)s") % {
                    "title": occurrence.meeting.title,
                    "when": _local(occurrence.starts_at, member),
                }
                body = _("Your group “%(group)s” now meets at %(when)s your time.") % {
                    "group": group.name,
                    "when": _local(occurrence.starts_at, member),
                }
            notify(
                member,
                kind=NotificationKind.MEETING_CHANGED,
                title=title,
                body=body,
                url=url,
                dedupe_key=f"occurrence:{occurrence.pk}:{change}:{occurrence.starts_at:%Y%m%d%H%M}",
            )


@receiver(signals.seat_offered, dispatch_uid="groups.notify_seat_offered")
def notify_seat_offered(sender, *, entry_id, group_id, user_id, expires_at, **kwargs):
    group = Group.objects.filter(pk=group_id).first()
    member = User.objects.filter(pk=user_id, is_active=True).first()
    if group is None or member is None:
        return
    notify(
        member,
        kind=NotificationKind.SEAT_OFFERED,
        title=_("A place in “%(group)s” is held for you") % {"group": group.name},
        body=_(
            "It's yours if you'd like it until %(when)s your time. If not, it passes on to the "
            "next person, and that's fine."
        )
        % {"when": _local(expires_at, member)},
        url=reverse("groups:detail", kwargs={"slug": group.slug}),
        dedupe_key=f"seat-offer:{entry_id}",
    )


@receiver(signals.join_request_decided, dispatch_uid="groups.notify_join_request_decided")
def notify_join_request_decided(sender, *, request_id, group_id, user_id, approved, note, **kwargs):
    group = Group.objects.filter(pk=group_id).first()
    member = User.objects.filter(pk=user_id, is_active=True).first()
    if group is None or member is None:
        return
    if approved:
        seated = Membership.objects.filter(
            group=group, user=member, status=MembershipStatus.ACTIVE
        ).exists()
        title = (
            _("You're in “%(group)s”") if seated else _("You're first in line for “%(group)s”")
        ) % {"group": group.name}
    else:
        title = _("An answer about “%(group)s”") % {"group": group.name}
    body = note or (
        _("Welcome. Take your time; listening is a fine way to start.")
        if approved
        else _("The facilitators can't offer you a place this time. Other groups may suit you.")
    )
    notify(
        member,
        kind=NotificationKind.JOIN_REQUEST_DECIDED,
        title=title,
        body=body,
        url=reverse("groups:detail", kwargs={"slug": group.slug}),
        dedupe_key=f"join-request:{request_id}",
    )


# --- Reminders follow members' preferences and time zone ------------------------------------------
# community cannot call groups (dependencies point one way), so a saved preference or time zone
# is picked up here, after commit, and the member's reminder rows are recomputed.

REMINDER_PREFERENCE_FIELDS = {"reminder_lead_minutes", "quiet_start", "quiet_end"}


def _resync_member_reminders_on_commit(user_id: int) -> None:
    from groups.services.reminders import sync_member_reminders

    def resync():
        user = User.objects.filter(pk=user_id).first()
        if user is not None:
            sync_member_reminders(user)

    transaction.on_commit(resync)


@receiver(post_save, sender=NotificationPreference, dispatch_uid="groups.reminders_preferences")
def resync_reminders_after_preferences(sender, instance, created, update_fields=None, **kwargs):
    if update_fields is not None and not (set(update_fields) & REMINDER_PREFERENCE_FIELDS):
        return  # e.g. an email unsubscribe: reminders' times and leads are unchanged
    _resync_member_reminders_on_commit(instance.user_id)


@receiver(post_save, sender=User, dispatch_uid="groups.reminders_time_zone")
def resync_reminders_after_time_zone(sender, instance, created, update_fields=None, **kwargs):
    if created or update_fields is None or "time_zone" not in update_fields:
        return
    _resync_member_reminders_on_commit(instance.pk)
