"""A Celery worker process SIGKILLed in the middle of a crisis alert, and in the middle of
sending a meeting reminder: each moderator is alerted exactly once and the member gets exactly
one reminder, in the app and by email.

The worker runs as the Procfile runs it (prefork, two processes), with beat beside it for the
reminder. Tasks are acknowledged late and given back to the queue when the process running
them dies (``CELERY_TASK_ACKS_LATE``, ``CELERY_TASK_REJECT_ON_WORKER_LOST``), so the kill is
followed by a second run of the same task; what makes that second run harmless is under test.
The kill lands at a chosen point. The alert's COMMIT is held by a row lock this test takes
(a notification's foreign key to its member is checked at commit), so the process dies after
asking to commit and before its after-commit work (queuing the emails) runs: the second run
finds the alerts stored and must still see their emails sent. The reminder's email is held
inside its SMTP conversation by the test's mail server, so that send dies unfinished.
"""

import contextlib
import os
import signal
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from community.celery import app
from community.models import Notification, NotificationKind, User
from community.services import update_preferences
from groups.models import Reminder, ReminderStatus
from moderation.models import QueueItem
from tests.chaos.services import CeleryProcess, SmtpSink, until
from tests.factories import install_seed_data, make_meeting
from tests.moderation.conftest import CRISIS, post
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)


def running(task_name: str) -> int | None:
    """The pid of the worker process running ``task_name`` now, asked over the broker."""
    for tasks in (app.control.inspect(timeout=1).active() or {}).values():
        for task in tasks:
            if task["name"] == task_name:
                return task["worker_pid"]
    return None


def idle() -> bool:
    """Nothing running, reserved or scheduled (a retry waiting) on any worker."""
    inspect = app.control.inspect(timeout=1)
    replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
    return all(reply is not None and not any(reply.values()) for reply in replies)


def kill_process_running(task_name: str, worker: CeleryProcess) -> int:
    pid = None

    def found() -> bool:
        nonlocal pid
        pid = running(task_name)
        return pid is not None

    until(found, what=f"{task_name} to run")
    os.kill(pid, signal.SIGKILL)
    # The worker replaces the process it lost and gives the task back to the queue.
    until(lambda: pid not in worker.pool_processes() and len(worker.pool_processes()) == 2)
    return pid


@contextlib.contextmanager
def row_locked(model, pk):
    """Hold ``SELECT ... FOR UPDATE`` on one row, from another connection, until the block ends:
    a transaction that inserts a row referring to it waits meanwhile."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                model.objects.select_for_update().filter(pk=pk).values_list("pk").first()
                locked.set()
                release.wait(timeout=120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=30)


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def celery_env(production_env, smtp):
    app.control.purge()  # what earlier tests left in this run's broker is not this test's
    return {
        **production_env,
        "DATABASE_URL": database_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
    }


def test_a_worker_killed_during_a_crisis_alert_alerts_each_moderator_exactly_once(
    celery_env, smtp, tmp_path, group, member, facilitator, moderator
):
    install_seed_data()  # the crisis rules, as the data migrations install them
    worker = CeleryProcess("worker", env=celery_env, log=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        # The alert writes one notification per moderator in one transaction; with Cedar's row
        # locked its COMMIT waits, and its process is killed waiting.
        with row_locked(User, moderator.pk):
            post(group, member, CRISIS)  # the alert task is queued when this commits
            until(waiting_on_a_lock, what="the alert's commit to wait for the row lock")
            killed = kill_process_running("moderation.tasks.task_alert_on_call_moderators", worker)

        item = QueueItem.objects.get(kind="crisis")
        until(lambda: QueueItem.objects.filter(pk=item.pk, alerted_at__isnull=False).exists())
        until(idle, what="the worker to finish everything")
        until(lambda: smtp.to(moderator.email) and smtp.to(facilitator.email), what="emails")
    finally:
        worker.stop()

    assert "Worker exited prematurely: signal 9 (SIGKILL)" in worker.output() or killed
    for person in (moderator, facilitator):
        alerts = Notification.objects.filter(user=person, kind=NotificationKind.MODERATOR_ALERT)
        assert alerts.count() == 1, person.display_name
        assert alerts.get().emailed_at is not None
        assert len(smtp.to(person.email)) == 1, person.display_name
    assert not Notification.objects.filter(user=member, kind=NotificationKind.MODERATOR_ALERT)


def test_a_worker_killed_while_emailing_a_reminder_delivers_exactly_one_reminder(
    celery_env, smtp, tmp_path, group, member, facilitator
):
    for person, leads in ((member, [15]), (facilitator, [])):
        update_preferences(
            person, actor=person, channels={}, reminder_lead_minutes=leads,
            quiet_start=None, quiet_end=None,
        )  # fmt: skip
    make_meeting(
        group,
        actor=facilitator,
        title="Evening sitting",
        starts_at=timezone.now() + timedelta(minutes=15, seconds=2),
        time_zone="Europe/Berlin",
    )  # its reminder falls due in two seconds
    reminder = Reminder.objects.get(user=member)
    smtp.stall_for(member.email)
    worker = CeleryProcess("worker", env=celery_env, log=tmp_path / "worker.log").start()
    beat = CeleryProcess("beat", env=celery_env, log=tmp_path / "beat.log").start()
    try:
        worker.wait_ready()
        beat.wait_ready()
        until(lambda: timezone.now() >= reminder.due_at, what="the reminder to fall due")
        # Beat runs this every 30 seconds; a run now, as if it had just come round.
        app.send_task("groups.tasks.task_send_due_reminders")
        until(smtp.stalled.is_set, what="the reminder email to reach the mail server")
        # Reminders' emails go in batches (one task per hundred, over one mail connection).
        kill_process_running("community.tasks.task_send_notification_emails", worker)
        smtp.release()
        until(lambda: smtp.to(member.email), what="the reminder email")
        # Beat's runs and the deferred-email sweep coming round again send nothing new.
        app.send_task("groups.tasks.task_send_due_reminders")
        app.send_task("community.tasks.task_send_deferred_emails")
        until(idle, what="the worker to finish everything")
    finally:
        beat.stop()
        worker.stop()

    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SENT
    reminders = Notification.objects.filter(user=member, kind=NotificationKind.MEETING_REMINDER)
    assert reminders.count() == 1
    assert reminders.get().emailed_at is not None
    assert len(smtp.to(member.email)) == 1
    assert b"Evening sitting" in smtp.to(member.email)[0]
