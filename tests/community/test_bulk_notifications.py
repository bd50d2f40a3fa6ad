"""Notifications for many members at once (``notify_many``, ``send_notification_emails``): the
same rows, choices, dedupe keys, live events and once-only emails as one ``notify`` each, and a
failed send that hands what is left to the one-email task with its retries."""

import json
import smtplib
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as _LocmemBackend
from django.utils import timezone

from community.asgi import application
from community.errors import DomainError
from community.models import Notification, NotificationKind
from community.services import (
    NotificationDraft,
    bulk_notifications,
    mark_notification_read,
    notify,
    notify_many,
    send_notification_emails,
    set_email_preference,
    update_preferences,
)
from tests.factories import make_member, make_session_key

KIND = NotificationKind.MEETING_REMINDER  # emailed by default


def quiet_now(user):
    """Quiet hours around this moment on the member's own clock."""
    local = timezone.now().astimezone(user.zone)
    update_preferences(
        user,
        actor=user,
        channels={},
        reminder_lead_minutes=[60],
        quiet_start=(local - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_end=(local + timedelta(hours=1)).time().replace(second=0, microsecond=0),
    )


@pytest.fixture
def published():
    """(task name, kwargs) of every task sent to the broker meanwhile."""
    sent = []

    def record(sender=None, body=None, **extra):
        sent.append((sender, body[1]))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


def test_notify_many_makes_what_notify_makes_by_each_members_choices(
    member, facilitator, outsider, moderator
):
    set_email_preference(facilitator, kind=KIND, enabled=False)
    update_preferences(
        outsider,
        actor=outsider,
        channels={KIND: {"in_app": False, "email": False}},
        reminder_lead_minutes=[60],
        quiet_start=None,
        quiet_end=None,
    )
    quiet_now(moderator)
    made = notify_many(
        [
            NotificationDraft(member, "Tuesday  circle:\nin an hour", "Bring tea.", "/m/1/"),
            NotificationDraft(facilitator, "Tuesday circle: in an hour"),
            NotificationDraft(outsider, "Tuesday circle: in an hour"),
            NotificationDraft(moderator, "Tuesday circle: in an hour"),
        ],
        kind=KIND,
    )
    willow, maple, heron, cedar = made
    assert (willow.title, willow.body, willow.url) == (
        "Tuesday circle: in an hour",
        "Bring tea.",
        "/m/1/",
    )
    assert willow.in_app and willow.email_pending and willow.email_after == willow.created_at
    assert maple.in_app and not maple.email_pending  # email of this kind turned off
    assert heron is None  # both channels off
    assert cedar.in_app and cedar.email_pending and cedar.email_after > cedar.created_at
    stored = Notification.objects.filter(kind=KIND)
    assert set(stored.values_list("pk", flat=True)) == {willow.pk, maple.pk, cedar.pk}


def test_a_dedupe_key_already_used_returns_the_first_and_makes_nothing_new(member, outsider):
    first = notify(member, kind=KIND, title="Tuesday circle: in an hour", dedupe_key="reminder:7")
    again, other, twice = notify_many(
        [
            NotificationDraft(member, "Tuesday circle: soon", dedupe_key="reminder:7"),
            NotificationDraft(outsider, "Tuesday circle: soon", dedupe_key="reminder:7"),
            NotificationDraft(outsider, "Tuesday circle: sooner", dedupe_key="reminder:7"),
        ],
        kind=KIND,
    )
    assert again.pk == first.pk and again.title == "Tuesday circle: in an hour"
    assert other.user == outsider and twice.pk == other.pk
    assert Notification.objects.count() == 2


def test_notify_many_refuses_an_unknown_kind_or_a_strange_link_and_makes_nothing(member):
    with pytest.raises(DomainError):
        notify_many([NotificationDraft(member, "Hello")], kind="party")
    with pytest.raises(DomainError):
        notify_many(
            [NotificationDraft(member, "Hello"), NotificationDraft(member, "Hi", url="//evil")],
            kind=KIND,
        )
    assert not Notification.objects.exists()


def test_after_commit_the_emails_are_queued_in_batches(
    member, facilitator, outsider, monkeypatch, published, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk_notifications, "EMAIL_BATCH", 2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        made = notify_many(
            [NotificationDraft(p, "Tuesday circle") for p in (member, facilitator, outsider)],
            kind=KIND,
        )
    assert len(callbacks) == 2  # the live events, then the emails
    callbacks[1]()
    assert published == [
        ("community.tasks.task_send_notification_emails", {"notification_ids": ids})
        for ids in ([made[0].pk, made[1].pk], [made[2].pk])
    ]


class CountingBackend(_LocmemBackend):
    opened = 0

    def open(self):
        CountingBackend.opened += 1
        return super().open()


def test_a_batch_of_emails_goes_once_each_over_one_connection(
    member, facilitator, outsider, moderator, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.opened = 0
    quiet_now(moderator)
    made = notify_many(
        [
            NotificationDraft(p, "Tuesday circle")
            for p in (member, facilitator, outsider, moderator)
        ],
        kind=KIND,
    )
    mark_notification_read(outsider, actor=outsider, notification_id=made[2].pk)
    ids = [n.pk for n in made]

    assert send_notification_emails(ids) == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted([member.email, facilitator.email])
    assert CountingBackend.opened == 1
    held = Notification.objects.get(pk=made[3].pk)  # quiet hours: waits for the sweep
    assert held.email_pending and held.emailed_at is None and held.email_after > timezone.now()
    # Run again (a redelivered task): nothing new.
    assert send_notification_emails(ids) == 0
    assert len(mail.outbox) == 2


class FailingSecondBackend(_LocmemBackend):
    sends = 0

    def send_messages(self, messages):
        FailingSecondBackend.sends += 1
        if FailingSecondBackend.sends == 2:
            raise smtplib.SMTPServerDisconnected("the test SMTP server hung up")
        return super().send_messages(messages)


def test_a_failed_send_hands_it_and_the_rest_to_the_one_email_task_and_keeps_the_sent(
    member, facilitator, outsider, settings, published
):
    settings.EMAIL_BACKEND = f"{__name__}.FailingSecondBackend"
    FailingSecondBackend.sends = 0
    first, second, third = notify_many(
        [NotificationDraft(p, "Tuesday circle") for p in (member, facilitator, outsider)],
        kind=KIND,
    )
    assert send_notification_emails([first.pk, second.pk, third.pk]) == 1
    assert [m.to for m in mail.outbox] == [[member.email]]
    first.refresh_from_db()
    assert first.emailed_at is not None and not first.email_pending
    for n in (second, third):
        n.refresh_from_db()
        assert n.email_pending and n.emailed_at is None  # the failed claim rolled back
    assert published == [
        ("community.tasks.task_send_notification_email", {"notification_id": n.pk})
        for n in (second, third)
    ]


def test_email_batch_logs_hold_counts_not_addresses_titles_or_bodies(member, caplog):
    caplog.set_level("INFO", logger="community.services.bulk_notifications")
    [n] = notify_many([NotificationDraft(member, "A private title", "A private body")], kind=KIND)
    send_notification_emails([n.pk])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Emailed 1 notifications (meeting_reminder)." in text
    assert member.email not in text and "private" not in text


# --- Live, over /ws/me/ -----------------------------------------------------------------------


async def open_me(user):
    key = await database_sync_to_async(make_session_key)(user)
    comm = WebsocketCommunicator(
        application,
        "/ws/me/",
        headers=[(b"origin", b"http://localhost:8000"), (b"cookie", f"sessionid={key}".encode())],
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert json.loads(await comm.receive_from(timeout=5)) == {"type": "unread", "count": 0}
    return comm


@pytest.mark.django_db(transaction=True)
async def test_each_member_hears_of_their_own_notification_with_their_unread_count(layer_kind):
    kind = NotificationKind.REPORT_OUTCOME  # not emailed: nothing left in the Celery queue
    willow, heron = [await database_sync_to_async(make_member)() for _ in range(2)]
    sockets = [await open_me(willow), await open_me(heron)]
    made = await database_sync_to_async(notify_many)(
        [
            NotificationDraft(willow, "About your report", url="/moderation/mine/"),
            NotificationDraft(heron, "About your report, Heron"),
            NotificationDraft(heron, "About your other report"),
        ],
        kind=kind,
    )
    frames = [
        [json.loads(await comm.receive_from(timeout=5)) for _ in range(n)]
        for comm, n in zip(sockets, (1, 2), strict=True)
    ]
    assert frames[0] == [
        {
            "type": "notification",
            "id": made[0].pk,
            "title": "About your report",
            "url": "/moderation/mine/",
            "unread": 1,
        }
    ]
    assert [(f["id"], f["unread"]) for f in frames[1]] == [(made[1].pk, 2), (made[2].pk, 2)]
    for comm in sockets:
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
