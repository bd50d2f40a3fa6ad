"""The moderation queue: opening items (the small interface ``groups`` calls) and claiming them.

Claiming is one conditional UPDATE (``status = open`` and no assignee) that must touch exactly
one row: of two moderators claiming at once, one gets the item and the other a kind refusal.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from community.errors import DomainError
from moderation.models import ITEM_PRIORITY, ItemKind, ItemStatus, QueueItem
from moderation.selectors import ensure_can_moderate_item
from moderation.services.audit import record_audit

logger = logging.getLogger(__name__)

__all__ = ["claim_item", "open_item", "release_item", "service_minutes"]

_ONE_PER_MESSAGE = {ItemKind.FLAG, ItemKind.HELD, ItemKind.CRISIS}


def service_minutes(kind: str) -> float:
    minutes = getattr(settings, "MODERATION_SERVICE_MINUTES", {})
    if kind == ItemKind.CRISIS:
        return float(getattr(settings, "MODERATION_CRISIS_ACK_MINUTES", 5))
    return float(minutes.get(kind, 24 * 60))


def open_item(
    *,
    kind: str,
    group=None,
    message=None,
    report=None,
    appeal=None,
    member=None,
    rule_kinds=(),
) -> QueueItem:
    """Put something in the queue. A message has at most one open flag, held or crisis item:
    opening it again returns the open one. A crisis item alerts on-call moderators after commit.
    """
    if kind not in ItemKind.values:
        raise ValueError(f"unknown queue item kind {kind!r}")
    now = timezone.now()
    group_id = getattr(group, "pk", group)
    if group_id is None and message is not None:
        group_id = message.group_id
    if member is None and message is not None:
        member_id = message.author_id
    else:
        member_id = getattr(member, "pk", member)
    fields = dict(
        kind=kind,
        priority=ITEM_PRIORITY[kind],
        group_id=group_id,
        message=message,
        report=report,
        appeal=appeal,
        member_id=member_id,
        rule_kinds=",".join(sorted(rule_kinds)),
        created_at=now,
        due_at=now + timedelta(minutes=service_minutes(kind)),
    )
    with transaction.atomic():
        if message is not None and kind in _ONE_PER_MESSAGE:
            existing = (
                QueueItem.objects.filter(kind=kind, message=message)
                .exclude(status=ItemStatus.CLOSED)
                .first()
            )
            if existing is not None:
                return existing
            try:
                with transaction.atomic():
                    item = QueueItem.objects.create(**fields)
            except IntegrityError:  # opened a moment ago by another process
                return QueueItem.objects.get(
                    kind=kind, message=message, status__in=[ItemStatus.OPEN, ItemStatus.CLAIMED]
                )
        else:
            item = QueueItem.objects.create(**fields)
        if kind == ItemKind.CRISIS:
            from moderation.tasks import task_alert_on_call_moderators

            item_id = item.pk
            transaction.on_commit(lambda: task_alert_on_call_moderators.delay(item_id=item_id))
    logger.info("queue item %s opened: kind=%s group=%s", item.pk, kind, group_id)
    return item


def claim_item(item: QueueItem, *, moderator) -> QueueItem:
    """Take an open item to work on. Refused (changing nothing) if someone else holds it or
    it is closed. Claiming a crisis item is also what acknowledges it."""
    ensure_can_moderate_item(moderator, item)
    now = timezone.now()
    with transaction.atomic():
        claimed = QueueItem.objects.filter(
            pk=item.pk, status=ItemStatus.OPEN, assignee__isnull=True
        ).update(status=ItemStatus.CLAIMED, assignee=moderator, claimed_at=now)
        if claimed != 1:
            current = QueueItem.objects.filter(pk=item.pk).values("status", "assignee_id").first()
            if current and current["status"] == ItemStatus.CLAIMED:
                if current["assignee_id"] == moderator.pk:
                    item.refresh_from_db()
                    return item
                raise DomainError(
                    "Another moderator is already looking after this item.",
                    code="already_claimed",
                )
            raise DomainError("This item is already closed.", code="item_closed")
        record_audit(
            actor=moderator,
            action="claim",
            target_type="queue_item",
            target_id=item.pk,
            group_id=item.group_id,
        )
    item.refresh_from_db()
    logger.info("queue item %s claimed by member %s", item.pk, moderator.pk)
    return item


def release_item(item: QueueItem, *, moderator) -> QueueItem:
    """Hand a claimed item back to the queue (only its assignee can)."""
    ensure_can_moderate_item(moderator, item)
    with transaction.atomic():
        released = QueueItem.objects.filter(
            pk=item.pk, status=ItemStatus.CLAIMED, assignee=moderator
        ).update(status=ItemStatus.OPEN, assignee=None, claimed_at=None)
        if released != 1:
            raise DomainError(
                "Only the moderator holding this item can hand it back.", code="not_claimed"
            )
        record_audit(
            actor=moderator,
            action="release",
            target_type="queue_item",
            target_id=item.pk,
            group_id=item.group_id,
        )
    item.refresh_from_db()
    return item
