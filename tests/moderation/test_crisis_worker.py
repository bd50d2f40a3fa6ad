"""The crisis path with a real Celery worker on real Redis (not eager): on-call moderators are
alerted after commit, and escalation fires after the (overridden, zero) acknowledgement time.
"""

import threading

import pytest

from community.models import Notification
from moderation.models import AuditEntry, QueueItem
from tests.factories import make_moderator
from tests.moderation.conftest import CRISIS, post


@pytest.mark.django_db(transaction=True)
def test_on_call_moderators_are_alerted_and_escalation_follows_the_timeout(
    group, member, facilitator, moderator, settings
):
    """A real Celery worker on real Redis (not eager)."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app
    from moderation.tasks import task_alert_on_call_moderators, task_escalate_overdue_items

    settings.MODERATION_CRISIS_ACK_MINUTES = 0
    second_moderator = make_moderator()
    done = {name: threading.Semaphore(0) for name in ("alert", "escalate")}

    def count(sender=None, kwargs=None, **rest):
        if sender is not None and sender.name == task_alert_on_call_moderators.name:
            crisis = QueueItem.objects.filter(kind="crisis").values_list("pk", flat=True).first()
            if (kwargs or {}).get("item_id") == crisis:
                done["alert"].release()
        if sender is not None and sender.name == task_escalate_overdue_items.name:
            done["escalate"].release()

    app.control.purge()  # tasks other tests left in this test run's broker
    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            post(group, member, CRISIS)  # the alert task is enqueued after commit
            assert done["alert"].acquire(timeout=60)
            alerted = set(
                Notification.objects.filter(kind="moderator_alert").values_list("user", flat=True)
            )
            assert alerted == {moderator.pk, second_moderator.pk, facilitator.pk}

            task_escalate_overdue_items.delay()
            task_escalate_overdue_items.delay()  # beat running twice changes nothing more
            assert done["escalate"].acquire(timeout=60) and done["escalate"].acquire(timeout=60)
    finally:
        task_postrun.disconnect(count)

    item = QueueItem.objects.get(kind="crisis")
    assert item.alerted_at is not None and item.escalated_at is not None
    escalations = Notification.objects.filter(dedupe_key=f"escalation:{item.pk}")
    assert set(escalations.values_list("user", flat=True)) == {
        moderator.pk,
        second_moderator.pk,
        facilitator.pk,
    }
    assert AuditEntry.objects.filter(action="escalate", target_id=item.pk).count() == 1
    assert not Notification.objects.filter(user=member, kind="moderator_alert").exists()
