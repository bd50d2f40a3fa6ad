"""Checking every new message, and the crisis path.

``screen_message`` runs inside ``groups.services.post_message``'s transaction, after the message
row is written and before it is broadcast:

* nothing matched: the message is allowed;
* crisis language: never held, hidden or held against the member. A crisis item goes to the
  top of the queue, on-call moderators are alerted (a Celery task, after commit), and the
  author at once gets, privately in the room, a kind message and the crisis resources;
* a rule that holds: the message is stored with ``held_at`` set and a held item opens; only its
  author sees it ("waiting for a moderator") until a moderator approves it;
* a rule that queues: a flag item opens; the message is shown.

``request_help`` (the room's "I need help now") takes the same crisis path without a message.
Crisis items nobody claimed within ``MODERATION_CRISIS_ACK_MINUTES``, and other items past
their service time, are escalated to every moderator by ``escalate_overdue_items`` (Celery
beat); each item escalates once, so running it twice is safe.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from community.realtime import send_event_on_commit, user_channel_group
from moderation import matcher
from moderation.models import ItemKind, ItemStatus, QueueItem
from moderation.services.audit import record_audit
from moderation.services.queue import open_item

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORT_EVENT",
    "ScreenOutcome",
    "alert_on_call_moderators",
    "escalate_overdue_items",
    "request_help",
    "screen_message",
]

SUPPORT_EVENT = "chat.support"


class ScreenOutcome(enum.StrEnum):
    ALLOW = "allow"
    FLAG = "flag"
    HOLD = "hold"
    CRISIS = "crisis"


def support_text(*, practice: bool = False) -> str:
    if practice:
        # Moderators never enter a practice space, so they don't promise to come "here".
        return _(
            "Thank you for telling us. You matter, and you don't have to hold it alone. A "
            "moderator has been told and will get in touch with you soon. If you might be in "
            "danger right now, these people are there for you at any hour."
        )
    return _(
        "Thank you for sharing this with us. You matter, and you don't have to hold it alone. "
        "A moderator has been told and will be with you here soon. If you might be in danger "
        "right now, these people are there for you at any hour."
    )


def _send_support(user_id: int, group_id: int, *, practice: bool = False) -> None:
    """After commit: a ``support`` frame only to the member's own sockets in this room."""
    from community.selectors import crisis_resources

    send_event_on_commit(
        user_channel_group(user_id),
        {
            "type": SUPPORT_EVENT,
            "group_id": group_id,
            "message": support_text(practice=practice),
            "resources": crisis_resources(),
        },
    )


def screen_message(message) -> ScreenOutcome:
    """Check a just-stored message against the flag rules and act on the result.

    Precondition: inside the transaction that stored ``message``, holding its room's lock.
    """
    # Words are screened wherever a member writes them: a message, or a check-in card's note.
    if message.kind not in ("text", "checkin") or not message.body:
        return ScreenOutcome.ALLOW
    from groups.selectors.membership import in_practice_room

    if in_practice_room(message):
        # A member's practice space is read by nobody else: nothing there is held or flagged,
        # and its crisis path asks the member first (companion.services.replies; the policy
        # is in docs/companion.md).
        return ScreenOutcome.ALLOW
    text = message.body
    if message.content_warning:
        text = f"{message.content_warning}\n{text}"
    result = matcher.match(text)
    if not result:
        return ScreenOutcome.ALLOW
    if result.crisis:
        # Never held, even if another rule (a phone number) would hold it: a person in distress
        # must be heard, and a moderator looks at the crisis item first anyway.
        open_item(
            kind=ItemKind.CRISIS, group=message.group_id, message=message, rule_kinds=result.kinds
        )
        _send_support(message.author_id, message.group_id)
        outcome = ScreenOutcome.CRISIS
    elif result.action == matcher.ACTION_HOLD:
        from groups.models import Message

        now = timezone.now()
        Message.objects.filter(pk=message.pk).update(held_at=now)
        message.held_at = now
        open_item(
            kind=ItemKind.HELD, group=message.group_id, message=message, rule_kinds=result.kinds
        )
        outcome = ScreenOutcome.HOLD
    else:
        open_item(
            kind=ItemKind.FLAG, group=message.group_id, message=message, rule_kinds=result.kinds
        )
        outcome = ScreenOutcome.FLAG
    logger.info("message %s screened: %s", message.pk, outcome.value)
    return outcome


def request_help(group, *, user) -> QueueItem:
    """ "I need help now": a crisis item for this member (one open at a time), the crisis
    resources privately in the room, and on-call moderators alerted."""
    from groups.models import GroupKind
    from groups.selectors.membership import access_group_as_member

    _group, _membership = access_group_as_member(group.slug, user)
    with transaction.atomic():
        item = (
            QueueItem.objects.filter(
                kind=ItemKind.CRISIS, group=group, member=user, message__isnull=True
            )
            .exclude(status=ItemStatus.CLOSED)
            .first()
        )
        if item is None:
            item = open_item(kind=ItemKind.CRISIS, group=group, member=user)
            record_audit(
                actor=user,
                action="help_requested",
                target_type="queue_item",
                target_id=item.pk,
                group_id=group.pk,
            )
        _send_support(user.pk, group.pk, practice=group.kind == GroupKind.PRACTICE)
    return item


# --- Alerts and escalation --------------------------------------------------------------------


def _moderators_for(group_id: int | None, *, on_call_only: bool) -> list:
    """Active staff (all, or the on-call auth group's) plus the group's active facilitators."""
    from groups.models import Membership, MembershipStatus, Role

    User = get_user_model()
    staff = User.objects.filter(is_active=True, is_staff=True)
    if on_call_only:
        on_call = staff.filter(groups__name=settings.MODERATION_ON_CALL_GROUP)
        if on_call.exists():
            staff = on_call
    facilitators = User.objects.none()
    if group_id is not None:
        facilitators = User.objects.filter(
            is_active=True,
            pk__in=Membership.objects.filter(
                group_id=group_id, role=Role.FACILITATOR, status=MembershipStatus.ACTIVE
            ).values("user_id"),
        )
    return list(
        User.objects.filter(
            Q(pk__in=staff.values("pk")) | Q(pk__in=facilitators.values("pk"))
        ).distinct()
    )


def _alert(user, item: QueueItem, *, title: str, dedupe: str) -> None:
    from django.urls import NoReverseMatch, reverse

    from community.services import notify

    try:
        url = reverse("admin:moderation_queueitem_change", args=[item.pk])
    except NoReverseMatch:
        url = ""
    notify(
        user,
        kind="moderator_alert",
        title=title,
        body=_("Please open the moderation queue; this item is at the top."),
        url=url,
        dedupe_key=f"{dedupe}:{item.pk}",
    )


def alert_on_call_moderators(item_id: int) -> int:
    """Tell on-call moderators (and the group's facilitators) about a crisis item at once.

    Idempotent: each moderator is told once per item (notification dedupe keys), and a
    closed item alerts nobody. Returns how many moderators were told.
    """
    item = QueueItem.objects.filter(pk=item_id).first()
    if item is None or item.status == ItemStatus.CLOSED:
        return 0
    moderators = _moderators_for(item.group_id, on_call_only=True)
    with transaction.atomic():
        for moderator in moderators:
            _alert(
                moderator,
                item,
                title=_("Someone in a group may need support now"),
                dedupe="crisis-alert",
            )
        QueueItem.objects.filter(pk=item.pk, alerted_at__isnull=True).update(
            alerted_at=timezone.now()
        )
    logger.info("crisis item %s: %d moderator(s) alerted", item.pk, len(moderators))
    return len(moderators)


def escalate_overdue_items(*, now=None) -> int:
    """Escalate open items nobody took in time to every moderator and staff member.

    Crisis items: unclaimed ``MODERATION_CRISIS_ACK_MINUTES`` after they opened. Others: still
    open (unclaimed) past ``due_at``. Each item escalates once (a conditional update marks it
    first), so a second run, or two beat processes, change nothing more.
    """
    now = now or timezone.now()
    ack = timedelta(minutes=float(settings.MODERATION_CRISIS_ACK_MINUTES))
    overdue = QueueItem.objects.filter(status=ItemStatus.OPEN, escalated_at__isnull=True).filter(
        Q(kind=ItemKind.CRISIS, created_at__lte=now - ack)
        | (~Q(kind=ItemKind.CRISIS) & Q(due_at__lte=now))
    )
    escalated = 0
    for item in overdue.order_by("-priority", "created_at"):
        with transaction.atomic():
            marked = QueueItem.objects.filter(
                pk=item.pk, status=ItemStatus.OPEN, escalated_at__isnull=True
            ).update(escalated_at=now)
            if marked != 1:
                continue
            title = (
                _("Nobody has answered a crisis item yet: someone may need support now")
                if item.kind == ItemKind.CRISIS
                else _("A moderation item is waiting past its time")
            )
            for moderator in _moderators_for(item.group_id, on_call_only=False):
                _alert(moderator, item, title=title, dedupe="escalation")
            record_audit(
                actor=None,
                action="escalate",
                target_type="queue_item",
                target_id=item.pk,
                group_id=item.group_id,
                result=item.kind,
            )
        escalated += 1
    if escalated:
        logger.info("escalated %d overdue queue item(s)", escalated)
    return escalated
