"""Meeting reminders end to end: a real Celery worker and a real Celery beat (in threads) on
real Redis, not eager mode. Beat runs the project's own every-30-seconds entry; the reminder
reaches the email outbox within 60 seconds after it falls due, exactly once."""

import re
import threading
import time as wall
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from community.models import Notification, NotificationKind
from community.services import update_preferences
from groups.models import Reminder, ReminderStatus
from tests.factories import make_meeting

pytestmark = pytest.mark.django_db(transaction=True)


def set_leads(user, leads):
    update_preferences(
        user, actor=user, channels={}, reminder_lead_minutes=leads, quiet_start=None, quiet_end=None
    )


def test_a_real_worker_and_beat_email_a_due_reminder_within_a_minute_exactly_once(
    group, facilitator, member
):
    from celery.beat import EmbeddedService, Scheduler
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app
    from groups.tasks import task_send_due_reminders

    set_leads(member, [15])
    set_leads(facilitator, [])
    # 15 minutes ahead of a meeting 15 minutes and 5 seconds from now: due in 5 seconds.
    make_meeting(
        group,
        actor=facilitator,
        title="Evening sitting",
        starts_at=timezone.now() + timedelta(minutes=15, seconds=5),
        time_zone="Europe/Berlin",
    )
    reminder = Reminder.objects.get(user=member)

    runs = threading.Semaphore(0)

    def count(sender=None, **extra):
        if getattr(sender, "name", None) == task_send_due_reminders.name:
            runs.release()

    app.control.purge()  # tasks other tests left in this run's broker
    saved_schedule = app.conf.beat_schedule
    # Only the reminders entry, exactly as configured (every 30 s); an in-memory scheduler so the
    # test database's django-celery-beat tables are not involved.
    app.conf.beat_schedule = {
        "send-due-reminders": settings.CELERY_BEAT_SCHEDULE["send-due-reminders"]
    }
    beat = EmbeddedService(app, thread=True, scheduler_cls=Scheduler, max_interval=1)
    task_postrun.connect(count, weak=False)
    arrived_at = None
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            beat.start()
            deadline = wall.monotonic() + 120
            while not mail.outbox and wall.monotonic() < deadline:
                wall.sleep(0.2)
            arrived_at = timezone.now()
            assert mail.outbox, "no reminder email arrived"

            # The task delivered twice more (by hand, as a second beat would) sends nothing new.
            while runs.acquire(blocking=False):
                pass
            task_send_due_reminders.delay()
            task_send_due_reminders.delay()
            assert runs.acquire(timeout=60) and runs.acquire(timeout=60)
    finally:
        beat.stop()
        task_postrun.disconnect(count)
        app.conf.beat_schedule = saved_schedule

    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SENT
    assert reminder.due_at <= reminder.sent_at  # never early
    assert arrived_at - reminder.due_at <= timedelta(seconds=60)  # the precision rule
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [member.email]
    # Sent 25-55 s after it fell due: "in 14 minutes" or "in 15 minutes", as is true then.
    assert re.fullmatch(r"Evening sitting: in 1[45] minutes, at \d\d:\d\d", email.subject)
    assert re.search(r"Your group “Evening circle” meets in 1[45] minutes, at ", email.body)
    assert (
        Notification.objects.filter(user=member, kind=NotificationKind.MEETING_REMINDER).count()
        == 1
    )
