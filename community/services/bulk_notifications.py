"""Notifications in bulk: ``notify_many`` and ``send_notification_emails``, for a job that tells
many members at once (10,000 meeting reminders falling due in one minute).

Same rules as ``community.services.notifications`` (each is built from its helpers): the same
rows, dedupe keys, preferences, quiet hours, live events and claimed email sends as calling
``notify`` and ``send_notification_email`` once per member, in a few queries per batch instead
of a dozen per member, with the live events on one Redis connection and the emails on one mail
connection.

Nothing here logs an email address, a title or a body: counts and ids only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from community.models import Notification, NotificationPreference, User
from community.realtime import notification_channel_group, send_events_now
from community.services.notifications import (
    EMAIL_SEND_ERRORS,
    _claim_and_send,
    _clean_title,
    _created_event,
    _email_to_finish,
    _email_wanted,
    _enqueue_email,
    _new_notification,
    build_notification_email,
    notify,
)

__all__ = ["EMAIL_BATCH", "NotificationDraft", "notify_many", "send_notification_emails"]

logger = logging.getLogger(__name__)

# ``notify_many`` queues its emails in tasks of at most this many, so that worker processes
# share them.
EMAIL_BATCH = 100


def _preferences(users: dict[int, User]) -> dict[int, NotificationPreference]:
    """Each member's preferences (unsaved defaults for those without a row), in one query."""
    stored = {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=list(users))}
    result = {}
    for pk, user in users.items():
        prefs = stored.get(pk) or NotificationPreference(user=user)
        prefs.user = user  # its time zone, without a query
        result[pk] = prefs
    return result


def _enqueue_emails(notification_ids: list[int]) -> None:
    from community.tasks import task_send_notification_emails  # tasks import this module

    for start in range(0, len(notification_ids), EMAIL_BATCH):
        batch = notification_ids[start : start + EMAIL_BATCH]
        try:
            task_send_notification_emails.delay(notification_ids=batch)
        except Exception:
            # The broker is unreachable: the rows stay pending and the sweep sends them later.
            logger.warning("Could not enqueue emails for %d notifications.", len(batch))


class NotificationDraft(NamedTuple):
    """One of the notifications ``notify_many`` makes: ``notify``'s arguments but the kind."""

    user: User
    title: str
    body: str = ""
    url: str = ""
    dedupe_key: str = ""


def notify_many(drafts: Sequence[NotificationDraft], *, kind: str) -> list[Notification | None]:
    """``notify`` for each draft, all of ``kind``, in a few queries instead of a few per draft:
    the same rows, live events and emails as calling it for each in turn (a repeated dedupe key
    returns the first notification; None where the member turned both channels off).

    Runs inside the caller's transaction; after it commits the live events go out on one
    connection and the emails are queued in tasks of up to ``EMAIL_BATCH``. Precondition: each
    draft's ``user`` is a saved member; called from a worker or a command, not from a socket's
    database thread (the broadcast waits for Redis).
    """
    titles = [_clean_title(kind, d.title, d.url) for d in drafts]
    if not drafts:
        return []
    with transaction.atomic():
        now = timezone.now()
        users = {d.user.pk: d.user for d in drafts}
        keys = {d.dedupe_key for d in drafts if d.dedupe_key}
        existing: dict[tuple[int, str], Notification] = {}
        if keys:
            existing = {
                (n.user_id, n.dedupe_key): n
                for n in Notification.objects.filter(user_id__in=list(users), dedupe_key__in=keys)
            }
        prefs_of = _preferences(users)
        results: list[Notification | None] = []
        new: list[Notification] = []
        to_finish: list[int] = []
        for draft, title in zip(drafts, titles, strict=True):
            key = (draft.user.pk, draft.dedupe_key)
            if draft.dedupe_key and key in existing:
                if existing[key].pk is not None and _email_to_finish(existing[key]):
                    to_finish.append(existing[key].pk)
                results.append(existing[key])
                continue
            notification = _new_notification(
                draft.user,
                prefs_of[draft.user.pk],
                kind=kind,
                title=title,
                now=now,
                body=draft.body,
                url=draft.url,
                dedupe_key=draft.dedupe_key,
            )
            if notification is not None:
                new.append(notification)
                if draft.dedupe_key:
                    existing[key] = notification  # a second draft with this key returns it
            results.append(notification)
        try:
            with transaction.atomic():  # a savepoint: a duplicate key must not spoil the caller
                Notification.objects.bulk_create(new)
        except IntegrityError:
            # Another transaction made one of these first (and has committed): one by one,
            # ``notify`` returns that one for it and makes the rest.
            return [
                notify(
                    d.user,
                    kind=kind,
                    title=d.title,
                    body=d.body,
                    url=d.url,
                    dedupe_key=d.dedupe_key,
                )
                for d in drafts
            ]
        in_app = {n.user_id for n in new if n.in_app}
        unread = dict(
            Notification.objects.filter(user_id__in=in_app, in_app=True, read_at__isnull=True)
            .values_list("user_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        events = [
            (notification_channel_group(n.user_id), _created_event(n, unread.get(n.user_id, 0)))
            for n in new
            if n.in_app
        ]
        if events:
            transaction.on_commit(lambda: send_events_now(events))
        emails = to_finish + [n.pk for n in new if n.email_pending and n.email_after <= now]
        if emails:
            transaction.on_commit(lambda: _enqueue_emails(emails))
        return results


def send_notification_emails(
    notification_ids: Sequence[int], *, now: datetime | None = None
) -> int:
    """Send many notifications' emails over one mail connection; returns how many this call sent.

    Each email is decided, claimed and sent exactly as ``send_notification_email`` does it, so
    any number of runs (and the one-email task) may overlap. The first send that fails (SMTP
    down, a full disk) hands that email and the rest to the one-email task, which retries with
    a backoff and records a give-up for the admin; the ones already sent stay sent.
    """
    fixed, now = now, now or timezone.now()
    notifications = list(
        Notification.objects.select_related("user")
        .filter(pk__in=list(notification_ids))
        .order_by("pk")
    )
    prefs_of = _preferences({n.user_id: n.user for n in notifications})
    ready = [n for n in notifications if _email_wanted(n, prefs_of[n.user_id], now)]
    if not ready:
        return 0
    sent: Counter[str] = Counter()
    connection = get_connection()
    for position, notification in enumerate(ready):
        message = build_notification_email(notification)
        message.connection = connection
        try:
            if position == 0:
                connection.open()
            if _claim_and_send(notification, message, fixed or timezone.now()):
                sent[notification.kind] += 1
        except EMAIL_SEND_ERRORS as error:
            left = [n.pk for n in ready[position:]]
            logger.warning(
                "Sending emails failed (%s); %d handed to the one-email task.",
                type(error).__name__,
                len(left),
            )
            for notification_id in left:
                _enqueue_email(notification_id)
            break
    try:
        connection.close()
    except EMAIL_SEND_ERRORS:
        logger.warning("Closing the mail connection failed; the emails were sent.")
    for kind, count in sorted(sent.items()):
        logger.info("Emailed %d notifications (%s).", count, kind)
    return sum(sent.values())
