"""Celery tasks for notifications: thin adapters over community.services. Each is safe to run
twice (sending is claimed by a conditional update)."""

import errno
import logging

from celery import Task, shared_task
from django.conf import settings

from community.services.bulk_notifications import send_notification_emails
from community.services.notifications import (
    EMAIL_SEND_ERRORS,
    due_email_ids,
    record_email_failure,
    send_notification_email,
)

logger = logging.getLogger(__name__)


class EmailTask(Task):
    """Records on the notification that its email gave up, once the last try failed."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        notification_id = (kwargs or {}).get("notification_id")
        if notification_id is not None:
            # The error's kind and errno name ("OSError ENOSPC"), never its text.
            code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
            record_email_failure(
                notification_id,
                error=f"{type(exc).__name__} {code}".strip(),
                attempts=self.request.retries + 1,
            )


@shared_task(
    base=EmailTask,
    name="community.tasks.task_send_notification_email",
    # SMTP down or refusing, the disk of a file backend full, a timeout: try again later.
    autoretry_for=EMAIL_SEND_ERRORS,
    retry_backoff=True,  # 1 s, 2 s, 4 s, ... with full jitter; the worker keeps serving others
    retry_backoff_max=300,
    max_retries=settings.EMAIL_MAX_RETRIES,
)
def task_send_notification_email(*, notification_id: int) -> bool:
    """Email one notification if it is still wanted; a second run sends nothing. When every
    try failed, ``EmailTask.on_failure`` marks it failed for the admin."""
    return send_notification_email(notification_id)


@shared_task(
    name="community.tasks.task_send_notification_emails",
    # Behind everything else waiting (the Redis transport serves priority 0 first, then 3, 6,
    # 9): a minute of 10,000 reminders queues a hundred of these, and beat's next reminder run
    # or a crisis alert's email must not wait behind them (bench/reminders.py).
    priority=6,
)
def task_send_notification_emails(*, notification_ids: list[int]) -> int:
    """Email a batch of notifications (``notify_many``'s) over one mail connection; a second
    run sends nothing new. A send that fails hands it and the rest of the batch to
    ``task_send_notification_email``, which retries each and records a give-up; a run lost
    whole leaves them pending for ``task_send_deferred_emails``."""
    return send_notification_emails(notification_ids)


@shared_task(name="community.tasks.task_send_deferred_emails")
def task_send_deferred_emails() -> int:
    """Every minute: enqueue the emails whose quiet hours have ended (and any whose own task
    was lost). Enqueuing one twice is harmless: only one send claims the row."""
    ids = due_email_ids()
    for notification_id in ids:
        task_send_notification_email.delay(notification_id=notification_id)
    if ids:
        logger.info("deferred emails: enqueued=%d", len(ids))
    return len(ids)


@shared_task(name="community.tasks.task_build_data_export")
def task_build_data_export(*, export_id: int) -> bool:
    """Build one member's data export (a large account's). Running it twice builds it once."""
    from community.services.data import build_data_export

    return build_data_export(export_id)


@shared_task(name="community.tasks.task_tidy_member_data")
def task_tidy_member_data() -> dict:
    """Hourly: delete expired data exports, and move on account erasures that were waiting for
    moderation (the close path does it at once; this catches anything it missed)."""
    from community.services.data import delete_expired_exports, finish_erasures

    result = {"exports_deleted": delete_expired_exports(), "erasures_finished": finish_erasures()}
    if any(result.values()):
        logger.info("member data tidied: %s", result)
    return result


@shared_task(name="community.tasks.task_purge_old_ip_addresses")
def task_purge_old_ip_addresses() -> int:
    """Daily: overwrite client IP addresses older than ``IP_RETENTION_DAYS`` in session
    records. Running it twice purges nothing more."""
    from community.services.retention import purge_old_ip_addresses

    return purge_old_ip_addresses()
