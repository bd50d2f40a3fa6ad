"""Notifications delivered live over ``/ws/me/`` (through the project's ASGI stack: origin check,
session auth) on the in-memory and the real Redis channel layer, and emailed by a real Celery
worker on real Redis."""

import json
import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.db import transaction

from community.asgi import application
from community.models import Notification, NotificationKind
from community.services import mark_all_notifications_read, notify
from tests.factories import make_session_key

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost:8000")
# Not emailed by default: these tests leave nothing behind in the Celery queue.
KIND = NotificationKind.REPORT_OUTCOME


async def open_me(user=None, *, origin=ORIGIN):
    headers = [origin] if origin else []
    if user is not None:
        key = await database_sync_to_async(make_session_key)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    comm = WebsocketCommunicator(application, "/ws/me/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    return connected, comm


async def frame(comm):
    return json.loads(await comm.receive_from(timeout=5))


async def test_a_new_notification_reaches_the_members_open_socket(layer_kind, member):
    await database_sync_to_async(notify)(member, kind=KIND, title="Earlier")
    connected, comm = await open_me(member)
    assert connected
    assert await frame(comm) == {"type": "unread", "count": 1}

    n = await database_sync_to_async(notify)(
        member, kind=KIND, title="Tuesday circle moved", url="/m/1/"
    )
    assert await frame(comm) == {
        "type": "notification",
        "id": n.pk,
        "title": "Tuesday circle moved",
        "url": "/m/1/",
        "unread": 2,
    }

    await database_sync_to_async(mark_all_notifications_read)(member, actor=member)
    assert await frame(comm) == {"type": "unread", "count": 0}
    await comm.disconnect()


async def test_another_members_notification_does_not_reach_the_socket(layer_kind, member, outsider):
    connected, comm = await open_me(member)
    assert connected
    assert await frame(comm) == {"type": "unread", "count": 0}
    await database_sync_to_async(notify)(outsider, kind=KIND, title="For Heron")
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_a_visitor_is_closed_with_4401(layer_kind, db):
    connected, comm = await open_me(None)
    assert connected
    output = await comm.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4401}


async def test_a_foreign_origin_is_refused_at_the_handshake(member):
    connected, _ = await open_me(member, origin=(b"origin", b"https://elsewhere.example"))
    assert not connected


# --- A real Celery worker on real Redis ------------------------------------------------------------


def test_a_real_worker_sends_the_email_exactly_once_even_when_the_task_runs_twice(member):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app
    from community.tasks import task_send_notification_email

    finished = threading.Semaphore(0)
    ours: set[int] = set()

    def count(sender=None, kwargs=None, **extra):
        # Only runs for this test's notification (the broker may hold others' tasks).
        name = getattr(sender, "name", None)
        if (
            name == task_send_notification_email.name
            and (kwargs or {}).get("notification_id") in ours
        ):
            finished.release()

    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            # notify enqueues one task after commit; a second, duplicate one follows.
            with transaction.atomic():
                n = notify(member, kind=NotificationKind.MEETING_CHANGED, title="Moved")
                ours.add(n.pk)
            task_send_notification_email.delay(notification_id=n.pk)  # and a duplicate
            assert finished.acquire(timeout=60) and finished.acquire(timeout=60)
    finally:
        task_postrun.disconnect(count)

    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Moved"
    n = Notification.objects.get(pk=n.pk)
    assert n.emailed_at is not None and not n.email_pending
