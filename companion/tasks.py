"""Celery tasks for the practice companion: thin adapters over services, safe to run twice."""

import logging

from celery import shared_task

from companion.services.replies import answer_practice_messages, answer_waiting_practice

logger = logging.getLogger(__name__)


@shared_task(name="companion.tasks.task_answer_practice_messages")
def task_answer_practice_messages(*, room_id: int) -> int:
    """Answer what waits in one practice room (enqueued after a member's message commits when a
    generative model is on, so a slow model holds a worker, not a web process). A run that
    finds nothing waiting, or the space gone, does nothing."""
    return answer_practice_messages(room_id)


@shared_task(name="companion.tasks.task_answer_waiting_practice")
def task_answer_waiting_practice() -> int:
    """Celery beat, every minute: answer practice messages a lost task or a crash left waiting."""
    answered = answer_waiting_practice()
    if answered:
        logger.info("answered %d waiting practice messages", answered)
    return answered
