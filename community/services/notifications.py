"""Notifications: the one ``notify`` every app calls, reading them, and emailing them.

``notify`` writes a row inside the caller's transaction. After commit the member's open pages
hear about it (``community.realtime``) and, when the member wants email for that kind and it is
not their quiet hours, a Celery task sends it. Emails held back by quiet hours wait in the row
(``email_pending``, ``email_after``) for the every-minute sweep. Sending is claimed by one
conditional update, so the email goes at most once however often the task runs; a failed send
rolls the claim back and the task retries, and once its retries are spent the failure is
recorded on the row for the admin (``record_email_failure``).

Nothing here logs an email address, a title or a body: ids and outcomes only.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from urllib.parse import urljoin

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import (
    EMAIL,
    IN_APP,
    Notification,
    NotificationKind,
    NotificationPreference,
    User,
)
from community.realtime import notification_channel_group, send_event_on_commit
from community.services.preferences import in_quiet_hours, quiet_hours_end, set_email_preference

__all__ = [
    "EMAIL_SEND_ERRORS",
    "NOTIFICATION_CREATED",
    "NOTIFICATION_READ",
    "build_notification_email",
    "due_email_ids",
    "mark_all_notifications_read",
    "mark_notification_read",
    "notify",
    "read_unsubscribe_token",
    "record_email_failure",
    "retry_failed_emails",
    "send_notification_email",
    "unsubscribe_by_token",
    "unsubscribe_token",
]

logger = logging.getLogger(__name__)

# Event types on the member's notification group (handled by community.consumers).
NOTIFICATION_CREATED = "notification.created"
NOTIFICATION_READ = "notification.read"

UNSUBSCRIBE_SALT = "community.notifications.unsubscribe"
UNSUBSCRIBE_MAX_AGE = timedelta(days=60)
# The sweep leaves an email that was due less than this long ago to the task enqueued for it
# at commit; older ones still pending (the task was lost, say to a broker outage) are enqueued
# again. One whose task gave up retrying is no longer pending (``record_email_failure``).
SWEEP_GRACE = timedelta(minutes=5)
# An email that could not go for this long after it was due is not sent any more.
EMAIL_STALE_AFTER = timedelta(days=2)
# What a failed send raises (SMTP down or refusing, a timeout, a file backend's full disk): the
# one-email task retries on these.
EMAIL_SEND_ERRORS = (smtplib.SMTPException, OSError)


def _unread_count(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, in_app=True, read_at__isnull=True).count()


def _enqueue_email(notification_id: int) -> None:
    from community.tasks import task_send_notification_email  # tasks import this module

    try:
        task_send_notification_email.delay(notification_id=notification_id)
    except Exception:
        # The broker is unreachable: the row stays pending and the sweep sends it later.
        logger.warning("Could not enqueue email for notification %s.", notification_id)


def _clean_title(kind: str, title: str, url: str) -> str:
    """The title as stored; raises DomainError for an unknown kind, an empty title or a link
    that is neither a path nor an http(s) URL."""
    if kind not in NotificationKind.values:
        raise DomainError(f"Unknown notification kind {kind!r}.", code="unknown_kind")
    title = " ".join(title.split())
    if not title:
        raise DomainError("A notification needs a title.", code="empty_title")
    if url and not (
        (url.startswith("/") and not url.startswith("//"))
        or url.startswith(("https://", "http://"))
    ):
        raise DomainError("A notification's link must be a path or an http(s) URL.", code="bad_url")
    return title


def _email_to_finish(existing: Notification) -> bool:
    """A repeat of a notification already made (a task run again after its worker died) finishes
    what the first call may not have: a process killed after its commit never queued the email.
    Queuing it twice is harmless: one send claims the row."""
    return (
        existing.email_pending
        and existing.emailed_at is None
        and existing.email_after is not None
        and existing.email_after <= timezone.now()
    )


def _repeated(existing: Notification) -> Notification:
    """``notify`` called again for a notification that exists: finish its email if the first
    call could not (``_email_to_finish``) and return it."""
    if _email_to_finish(existing):
        transaction.on_commit(lambda: _enqueue_email(existing.pk))
    return existing


def _new_notification(
    user: User, prefs: NotificationPreference, *, kind: str, title: str, now: datetime, **fields
) -> Notification | None:
    """The unsaved row ``notify`` makes for ``user``, or None when both channels are off."""
    in_app = prefs.wants(kind, IN_APP)
    email = prefs.wants(kind, EMAIL) and user.is_active and bool(user.email)
    if not (in_app or email):
        return None
    return Notification(
        user=user,
        kind=kind,
        title=title[:200],
        created_at=now,
        in_app=in_app,
        email_pending=email,
        email_after=quiet_hours_end(prefs, now) if email else None,
        **fields,
    )


def _created_event(notification: Notification, unread: int) -> dict:
    return {
        "type": NOTIFICATION_CREATED,
        "id": notification.pk,
        "title": notification.title,
        "url": notification.url,
        "unread": unread,
    }


def notify(
    user: User,
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    dedupe_key: str = "",
) -> Notification | None:
    """Tell ``user`` about something, in-app and/or by email as they chose for ``kind``.

    Runs inside the caller's transaction; the live event and the email happen after it commits.
    With a ``dedupe_key`` a repeated call makes nothing new and returns the first notification.
    Returns None when the member turned both channels off for this kind.
    """
    title = _clean_title(kind, title, url)
    with transaction.atomic():
        if dedupe_key:
            existing = Notification.objects.filter(user=user, dedupe_key=dedupe_key).first()
            if existing is not None:
                return _repeated(existing)
        now = timezone.now()
        notification = _new_notification(
            user,
            NotificationPreference.for_member(user),
            kind=kind,
            title=title,
            now=now,
            body=body,
            url=url,
            dedupe_key=dedupe_key,
        )
        if notification is None:
            return None
        try:
            with transaction.atomic():  # a savepoint: a duplicate key must not spoil the caller
                notification.save(force_insert=True)
        except IntegrityError:
            if not dedupe_key:
                raise
            # Another transaction made it first and has committed: a worker killed in its
            # COMMIT, say, whose backend finished the commit after this call had looked (the
            # foreign keys are checked at commit; tests/chaos/test_celery_kills.py). Its email
            # was never queued, so this is a repeat like any other.
            return _repeated(Notification.objects.get(user=user, dedupe_key=dedupe_key))
        if notification.in_app:
            send_event_on_commit(
                notification_channel_group(user.pk),
                _created_event(notification, _unread_count(user.pk)),
            )
        if notification.email_pending and notification.email_after <= now:
            transaction.on_commit(lambda: _enqueue_email(notification.pk))
        return notification


# --- Reading --------------------------------------------------------------------------------------


def _announce_read(user_id: int) -> None:
    send_event_on_commit(
        notification_channel_group(user_id),
        {"type": NOTIFICATION_READ, "unread": _unread_count(user_id)},
    )


@transaction.atomic
def mark_notification_read(user: User, *, actor: User, notification_id: int) -> Notification:
    """Mark one of the member's notifications read. Reading it in-app also cancels its email."""
    if actor.pk != user.pk:
        raise PermissionDenied(_("Only you can mark your notifications as read."))
    notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is None:
        raise NotFound(_("That notification isn't here any more."))
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now(), email_pending=False
        )
        notification.refresh_from_db(fields=["read_at", "email_pending"])
        _announce_read(user.pk)
    return notification


@transaction.atomic
def mark_all_notifications_read(user: User, *, actor: User) -> int:
    """Mark every unread notification of the member read; returns how many changed."""
    if actor.pk != user.pk:
        raise PermissionDenied(_("Only you can mark your notifications as read."))
    changed = Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now(), email_pending=False
    )
    if changed:
        _announce_read(user.pk)
    return changed


# --- Unsubscribing --------------------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user: User, kind: str) -> str:
    """A signed token that turns off ``kind`` emails for ``user``; good for 60 days."""
    return _signer().sign_object({"u": user.pk, "k": kind})


def read_unsubscribe_token(token: str) -> tuple[int, str]:
    """The (member id, kind) a token names. A forged or expired token raises DomainError."""
    try:
        data = _signer().unsign_object(token, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.SignatureExpired:
        raise DomainError(
            _(
                "This unsubscribe link is more than 60 days old, so it no longer works. "
                "Nothing was changed. You can choose which emails you get on your "
                "notification settings page after signing in."
            ),
            code="token_expired",
        ) from None
    except signing.BadSignature:
        raise DomainError(
            _(
                "This unsubscribe link isn't one we recognise, so nothing was changed. "
                "It may have been cut short when it was copied. You can choose which emails "
                "you get on your notification settings page after signing in."
            ),
            code="token_invalid",
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("u"), int)
        or data.get("k") not in NotificationKind.values
    ):
        raise DomainError(_("This unsubscribe link isn't one we recognise."), code="token_invalid")
    return data["u"], data["k"]


def _check_token(token: str, *, actor: User | None) -> tuple[User, str]:
    user_id, kind = read_unsubscribe_token(token)
    if actor is not None and actor.is_authenticated and actor.pk != user_id:
        raise PermissionDenied(
            _(
                "This unsubscribe link belongs to another account, so nothing was changed. "
                "You can choose your own emails on your notification settings page."
            ),
            code="token_other_member",
        )
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise DomainError(_("This unsubscribe link isn't one we recognise."), code="token_invalid")
    return user, kind


def unsubscribe_by_token(token: str, *, actor: User | None = None, commit: bool = True) -> str:
    """Turn off the emails a token names; returns the kind. ``commit=False`` only checks.

    ``actor`` is whoever is signed in (or None): a token for another member changes nothing.
    """
    user, kind = _check_token(token, actor=actor)
    if commit:
        set_email_preference(user, kind=kind, enabled=False)
        logger.info("Member %s turned off %s emails by link.", user.pk, kind)
    return kind


# --- Email ----------------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return urljoin(settings.SITE_URL.rstrip("/") + "/", path)


def build_notification_email(notification: Notification) -> EmailMultiAlternatives:
    user = notification.user
    unsubscribe_url = _absolute(
        reverse("notification_unsubscribe", args=[unsubscribe_token(user, notification.kind)])
    )
    context = {
        "site_name": settings.SITE_NAME,
        "display_name": user.display_name,
        "title": notification.title,
        "body": notification.body,
        "link": _absolute(notification.url) if notification.url else "",
        "kind_label": NotificationKind(notification.kind).label,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": _absolute(reverse("notification_preferences")),
    }
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=render_to_string("community/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(
        render_to_string("community/email/notification.html", context), "text/html"
    )
    return message


def _drop_email(notification_id: int) -> None:
    Notification.objects.filter(pk=notification_id).update(email_pending=False)


def _email_wanted(notification: Notification, prefs: NotificationPreference, now: datetime) -> bool:
    """Whether this notification's email should go now. One that is no longer wanted (read,
    member gone or opted out, too old) stops being pending; one inside quiet hours waits for
    their end (``email_after``, for the sweep). Precondition: ``prefs`` are the member's."""
    if not notification.email_pending or notification.emailed_at:
        return False
    user = notification.user
    if notification.read_at is not None or not user.is_active or not user.email:
        _drop_email(notification.pk)
        return False
    if not prefs.wants(notification.kind, EMAIL):
        _drop_email(notification.pk)
        return False
    if now - (notification.email_after or notification.created_at) > EMAIL_STALE_AFTER:
        _drop_email(notification.pk)
        logger.info("Email for notification %s is too old to send; dropped.", notification.pk)
        return False
    if in_quiet_hours(prefs, now):
        Notification.objects.filter(pk=notification.pk, email_pending=True).update(
            email_after=quiet_hours_end(prefs, now)
        )
        return False
    return True


def _claim_and_send(
    notification: Notification, message: EmailMultiAlternatives, now: datetime
) -> bool:
    """Send ``message`` if this call's conditional update claims the row; True if it did. A
    send that raises rolls its claim back with the transaction, for a retry."""
    with transaction.atomic():
        claimed = Notification.objects.filter(
            pk=notification.pk, email_pending=True, emailed_at__isnull=True, read_at__isnull=True
        ).update(emailed_at=now, email_pending=False)
        if claimed != 1:
            return False
        message.send()  # raises on SMTP failure: the claim rolls back with the transaction
    return True


def send_notification_email(notification_id: int, *, now: datetime | None = None) -> bool:
    """Send one notification's email if it is still wanted; True if this call sent it.

    Safe to run any number of times: only the call whose conditional update claims the row
    sends, and a send that raises (SMTP down) rolls its claim back for the retry. Inside quiet
    hours it sends nothing and moves ``email_after`` to their end, for the sweep.
    """
    now = now or timezone.now()
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None or not notification.email_pending or notification.emailed_at:
        return False
    if not _email_wanted(notification, NotificationPreference.for_member(notification.user), now):
        return False
    if not _claim_and_send(notification, build_notification_email(notification), now):
        return False
    logger.info("Emailed notification %s (%s).", notification.pk, notification.kind)
    return True


def record_email_failure(
    notification_id: int, *, error: str, attempts: int, now: datetime | None = None
) -> bool:
    """Sending this notification's email gave up (every try failed): stop it being pending and
    mark it failed, for the admin's "email failed" list. True if this call marked it.

    ``error`` is the kind of error (its class and errno names), never its text: an SMTP reply
    can quote the address. A send that went out meanwhile, or a failure already recorded, is left alone.
    """
    marked = Notification.objects.filter(
        pk=notification_id, emailed_at__isnull=True, email_failed_at__isnull=True
    ).update(email_pending=False, email_failed_at=now or timezone.now(), email_error=error[:100])
    if marked:
        logger.error(
            "Email for notification %s failed %d times (%s); gave up. Listed in the admin under "
            "notifications, email failed.",
            notification_id,
            attempts,
            error,
        )
    return bool(marked)


def retry_failed_emails(notification_ids, *, actor: User) -> int:
    """Send failed emails again (the admin's action, once the mail server is back): each is
    pending again, from now, and queued. Returns how many. Precondition: ``actor`` is staff."""
    if not actor.is_staff:
        raise PermissionDenied(_("Only staff can send failed emails again."))
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Notification.objects.filter(
                pk__in=list(notification_ids), email_failed_at__isnull=False, emailed_at=None
            ).values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            email_pending=True, email_failed_at=None, email_error="", email_after=now
        )
        for notification_id in ids:
            transaction.on_commit(lambda pk=notification_id: _enqueue_email(pk))
    logger.info("Staff %s queued %d failed email(s) again.", actor.pk, len(ids))
    return len(ids)


def due_email_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending emails that may go now: held back by quiet hours that have ended, or whose
    own task has not sent them within ``SWEEP_GRACE`` (lost). One given up is not pending."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(
            email_pending=True,
            read_at__isnull=True,
            email_after__lte=now,
            email_after__gte=now - EMAIL_STALE_AFTER,
        )
        .filter(Q(email_after__gt=F("created_at")) | Q(email_after__lte=now - SWEEP_GRACE))
        .order_by("email_after")
        .values_list("pk", flat=True)[:limit]
    )
