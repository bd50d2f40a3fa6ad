"""Email with the mail server down (it takes connections and never answers) and with the disk
full: each email task retries with backoff, then gives up visibly (the notification is marked
failed and listed in the admin under "email failed"), while the worker goes on running other
tasks. Once the mail server is back, an admin sends the failed emails again from that list.

The worker runs with ``EMAIL_MAX_RETRIES=2`` (production: 6, about a minute of retries), so it
gives up within seconds; the retry, backoff and give-up path is the production one.
"""

import contextlib
import os
import re
import socket
import subprocess

import pytest

from community.celery import app
from community.models import Notification, NotificationKind, User
from community.services import notify
from tests.chaos.services import CeleryProcess, SmtpSink, until
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

RETRIES = 2


@pytest.fixture
def email_env(production_env):
    app.control.purge()  # what earlier tests left in this run's broker is not this test's
    return {**production_env, "DATABASE_URL": database_url(), "EMAIL_MAX_RETRIES": str(RETRIES)}


def reminders_for(*people) -> list[Notification]:
    """A notification each that the member wants by email; its email task is queued."""
    return [
        notify(person, kind=NotificationKind.MEETING_REMINDER, title="Evening sitting soon")
        for person in people
    ]


def failed(notifications) -> bool:
    ids = [n.pk for n in notifications]
    return Notification.objects.filter(pk__in=ids, email_failed_at__isnull=False).count() == len(
        ids
    )


def assert_retried_then_gave_up(worker: CeleryProcess, notifications, error: str) -> None:
    log = worker.output()
    for notification in notifications:
        notification.refresh_from_db()
        assert notification.emailed_at is None
        assert not notification.email_pending, "given up: the sweep leaves it alone"
        assert notification.email_error == error
    # Every try after the first was scheduled with a backoff, and each email was given up
    # once, logged; meanwhile the worker ran the other task it was given.
    retries = re.findall(r"task_send_notification_email\[[^\]]+\] retry: Retry in (\d+)s", log)
    assert len(retries) == RETRIES * len(notifications), log
    gave_up = re.findall(r"ERROR .* Email for notification (\d+) failed (\d+) times", log)
    assert sorted(gave_up) == sorted((str(n.pk), str(RETRIES + 1)) for n in notifications)
    assert re.search(r"task_tidy_member_data\[[^\]]+\] succeeded", log), log


def failed_list(client, moderator, settings) -> str:
    """The admin's list of notifications whose email failed, as a superuser sees it."""
    settings.ADMIN_REQUIRE_MFA = False  # this test is not about the second factor
    User.objects.filter(pk=moderator.pk).update(is_superuser=True)
    client.force_login(moderator)
    response = client.get("/admin/community/notification/?email=failed")
    assert response.status_code == 200
    return response.content.decode()


def test_with_the_mail_server_down_emails_retry_give_up_visibly_and_can_be_sent_again(
    email_env, tmp_path, group, member, facilitator, moderator, client, settings
):
    # Down the worst way: connections are taken (the kernel's backlog) and never answered, so
    # each try waits EMAIL_TIMEOUT (2 s here) before it fails, holding a worker process.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    env = {**email_env, "EMAIL_URL": f"smtp://127.0.0.1:{port}", "EMAIL_TIMEOUT": "2"}
    worker = CeleryProcess("worker", env=env, log=tmp_path / "worker.log").start()
    sink = None
    try:
        worker.wait_ready()
        notifications = reminders_for(member, facilitator)
        app.send_task("community.tasks.task_tidy_member_data")
        until(lambda: failed(notifications), what="the emails to be given up")
        assert_retried_then_gave_up(worker, notifications, "SMTPServerDisconnected")
        # Not blocked: a task queued after the emails ran while they were still being tried
        # (each gives up only after three tries of 2 s each).
        log = worker.output()
        other = log.index("task_tidy_member_data[")
        assert log.index(" succeeded ", other) < log.index("Email for notification"), log

        page = failed_list(client, moderator, settings)
        for notification in notifications:
            assert f"/admin/community/notification/{notification.pk}/change/" in page
        assert "SMTPServerDisconnected" in page

        # The mail server is back: the admin sends them again from the list.
        silent.close()
        sink = SmtpSink(port=port).start()
        response = client.post(
            "/admin/community/notification/?email=failed",
            {
                "action": "send_failed_emails_again",
                "_selected_action": [n.pk for n in notifications],
            },
        )
        assert response.status_code == 302
        until(lambda: sink.to(member.email) and sink.to(facilitator.email), what="the emails")
        for notification in notifications:
            notification.refresh_from_db()
            assert notification.emailed_at is not None and notification.email_failed_at is None
    finally:
        worker.stop()
        silent.close()
        if sink is not None:
            sink.stop()


@pytest.fixture
def full_disk(tmp_path):
    """A directory on a tiny tmpfs, filled up: every write there fails with ENOSPC."""
    directory = tmp_path / "full"
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "chaos-full", str(directory)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        with contextlib.suppress(OSError), open(directory / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_with_the_disk_full_emails_retry_and_give_up_visibly_and_other_tasks_run(
    email_env, full_disk, tmp_path, group, member, facilitator, moderator, client, settings
):
    # The file backend writes each email to a file, as a mail spool would: the disk is full.
    env = {**email_env, "EMAIL_URL": f"filemail:///{full_disk}"}
    worker = CeleryProcess("worker", env=env, log=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        notifications = reminders_for(member, facilitator)
        app.send_task("community.tasks.task_tidy_member_data")
        until(lambda: failed(notifications), what="the emails to be given up")
    finally:
        worker.stop()
    assert_retried_then_gave_up(worker, notifications, "OSError ENOSPC")
    assert "OSError ENOSPC" in failed_list(client, moderator, settings)
