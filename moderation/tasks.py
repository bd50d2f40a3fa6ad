"""Celery tasks for moderation: thin adapters over services. Each is safe to run twice."""

import logging

from celery import shared_task

from moderation.services.digest import send_moderation_digest
from moderation.services.screening import alert_on_call_moderators, escalate_overdue_items

logger = logging.getLogger(__name__)


@shared_task(name="moderation.tasks.task_alert_on_call_moderators")
def task_alert_on_call_moderators(*, item_id: int) -> int:
    """Alert on-call moderators about a crisis item (each moderator once per item)."""
    return alert_on_call_moderators(item_id)


@shared_task(name="moderation.tasks.task_escalate_overdue_items")
def task_escalate_overdue_items() -> int:
    """Celery beat, every minute: escalate unacknowledged crisis items and overdue items."""
    return escalate_overdue_items()


@shared_task(name="moderation.tasks.task_send_moderation_digest")
def task_send_moderation_digest() -> int:
    """Celery beat, daily: each moderator's open items, once a day (dedupe key per day)."""
    return send_moderation_digest()
