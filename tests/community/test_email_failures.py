"""Email that cannot be sent: retries, then a visible give-up (the notification is marked failed
and listed in the admin), a staff action to send it again, and a repeated ``notify`` that queues
an email its first call never did. Faults against real processes: tests/chaos/."""

import smtplib

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as _LocmemBackend
from django.test import Client

from community.errors import PermissionDenied
from community.models import Notification, NotificationKind, User
from community.services import notify, record_email_failure, retry_failed_emails
from community.services.notifications import due_email_ids
from community.tasks import task_send_notification_email

KIND = NotificationKind.MEETING_CHANGED  # emailed by default


class AlwaysFailingBackend(_LocmemBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("the test SMTP server hung up")


@pytest.fixture
def smtp_down(settings):
    settings.EMAIL_BACKEND = f"{__name__}.AlwaysFailingBackend"


def test_an_email_whose_every_try_fails_is_marked_failed_and_no_longer_pending(
    member, smtp_down, caplog
):
    n = notify(member, kind=KIND, title="Moved")
    result = task_send_notification_email.apply(kwargs={"notification_id": n.pk})
    assert result.failed()
    n.refresh_from_db()
    assert n.email_failed_at is not None and n.emailed_at is None and not n.email_pending
    assert n.email_error == "SMTPServerDisconnected"
    assert n.pk not in due_email_ids(now=n.email_failed_at + (n.email_failed_at - n.created_at))
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].levelname == "ERROR"
    assert member.email not in gave_up[0].getMessage()


def test_a_failure_is_recorded_once_and_never_over_an_email_that_went(member):
    n = notify(member, kind=KIND, title="Moved")
    assert record_email_failure(n.pk, error="OSError ENOSPC", attempts=7)
    assert not record_email_failure(n.pk, error="OSError ENOSPC", attempts=7)
    sent = notify(member, kind=KIND, title="Moved again")
    Notification.objects.filter(pk=sent.pk).update(emailed_at=sent.created_at, email_pending=False)
    assert not record_email_failure(sent.pk, error="OSError ENOSPC", attempts=7)
    assert Notification.objects.get(pk=sent.pk).email_failed_at is None


def test_staff_send_failed_emails_again_and_they_go(
    member, moderator, django_capture_on_commit_callbacks
):
    n = notify(member, kind=KIND, title="Moved")
    record_email_failure(n.pk, error="ConnectionRefusedError ECONNREFUSED", attempts=7)
    with pytest.raises(PermissionDenied):
        retry_failed_emails([n.pk], actor=member)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert retry_failed_emails([n.pk], actor=moderator) == 1
    n.refresh_from_db()
    assert n.email_pending and n.email_failed_at is None and n.email_error == ""
    assert len(queued) == 1
    task_send_notification_email.apply(kwargs={"notification_id": n.pk})
    assert len(mail.outbox) == 1


def test_the_admin_lists_failed_emails_without_titles_or_bodies(member, moderator, settings):
    settings.ADMIN_REQUIRE_MFA = False  # not about the second factor
    User.objects.filter(pk=moderator.pk).update(is_superuser=True)
    failed = notify(member, kind=KIND, title="A private title", body="A private body")
    record_email_failure(failed.pk, error="OSError ENOSPC", attempts=7)
    fine = notify(member, kind=KIND, title="Another")
    client = Client()
    client.force_login(moderator)
    page = client.get("/admin/community/notification/?email=failed").content.decode()
    assert f"/admin/community/notification/{failed.pk}/change/" in page
    assert f"/admin/community/notification/{fine.pk}/change/" not in page
    assert "OSError ENOSPC" in page
    assert "A private title" not in page and "A private body" not in page


def test_a_repeated_notify_queues_the_email_its_first_call_left_pending(
    member, django_capture_on_commit_callbacks
):
    """A task run again after its worker died between its commit and its after-commit work."""
    with django_capture_on_commit_callbacks(execute=False) as first:
        n = notify(member, kind=KIND, title="Moved", dedupe_key="occ:1:moved")
    with django_capture_on_commit_callbacks(execute=False) as repeated:
        assert notify(member, kind=KIND, title="Moved", dedupe_key="occ:1:moved").pk == n.pk
    assert len(first) == 2  # the bell's live event, and the email
    assert len(repeated) == 1  # the email again; nothing new for the bell
    Notification.objects.filter(pk=n.pk).update(emailed_at=n.created_at, email_pending=False)
    with django_capture_on_commit_callbacks(execute=False) as after_sending:
        notify(member, kind=KIND, title="Moved", dedupe_key="occ:1:moved")
    assert after_sending == []
