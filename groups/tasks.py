"""Celery tasks for groups: thin adapters that call a service. Each is safe to run twice."""

import logging

from celery import shared_task

from groups.models import Meeting
from groups.services.connections import expire_safe_person_invites
from groups.services.meetings import extend_all_occurrences, extend_occurrences
from groups.services.membership import expire_seat_offers
from groups.services.reminders import send_due_reminders

logger = logging.getLogger(__name__)


@shared_task(name="groups.tasks.task_extend_occurrences")
def task_extend_occurrences(*, meeting_id: int | None = None) -> int:
    """Keep each live recurring meeting's occurrences materialised up to the cap.

    Celery beat runs it without arguments (every meeting); ``meeting_id`` limits it to one.
    Creating occurrences is idempotent (unique ``original_start``), so a redelivery is harmless.
    """
    if meeting_id is None:
        created = extend_all_occurrences()
    else:
        meeting = Meeting.objects.filter(pk=meeting_id).first()
        if meeting is None:
            logger.info("extend occurrences: meeting %s is gone", meeting_id)
            return 0
        created = extend_occurrences(meeting)
    logger.info("extend occurrences: created=%d meeting_id=%s", created, meeting_id)
    return created


@shared_task(name="groups.tasks.task_expire_seat_offers")
def task_expire_seat_offers() -> int:
    """Lapse waitlist seat offers older than 48 hours and offer the seats to the next in line.

    Only offers already past their expiry change, each under its group's lock, so a second run
    (or a redelivery) finds nothing left to do.
    """
    lapsed = expire_seat_offers()
    logger.info("expire seat offers: lapsed=%d", lapsed)
    return lapsed


@shared_task(name="groups.tasks.task_expire_safe_person_invites")
def task_expire_safe_person_invites() -> int:
    """Mark safe-person invitations past their 14 days as expired. One conditional update of
    rows already past expiry, so a second run (or a redelivery) finds nothing to do."""
    lapsed = expire_safe_person_invites()
    logger.info("expire safe-person invites: lapsed=%d", lapsed)
    return lapsed


@shared_task(name="groups.tasks.task_send_due_reminders")
def task_send_due_reminders() -> int:
    """Every 30 seconds: re-queue stale claims, drop reminders of meetings that began, claim the
    due ones in batches and send each exactly once, a batch per transaction; their emails go in
    tasks of a hundred (``groups.services.reminders``).

    Safe to run twice, concurrently, or redelivered after a worker died: claims are disjoint
    and each send is conditional on its claim and deduplicated by the reminder's id.
    """
    return send_due_reminders()["sent"]
