"""Notifications: the one ``notify``, preferences, quiet hours, email and unsubscribing, pages."""

import smtplib
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail, signing
from django.core.mail.backends.locmem import EmailBackend as _LocmemBackend
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import services
from community.errors import DomainError, PermissionDenied
from community.models import Notification, NotificationKind, NotificationPreference, User
from community.selectors import unread_notification_count
from community.services import (
    in_quiet_hours,
    notify,
    quiet_hours_end,
    send_notification_email,
    unsubscribe_token,
    update_preferences,
)
from community.services.notifications import UNSUBSCRIBE_SALT, due_email_ids
from community.tasks import task_send_notification_email
from tests.factories import PASSWORD, make_member

KIND = NotificationKind.MEETING_CHANGED  # emailed by default


def prefs_for(time_zone, start, end):
    """Unsaved preferences of an unsaved member: the quiet-hours functions are pure."""
    return NotificationPreference(
        user=User(time_zone=time_zone), quiet_start=time(*start), quiet_end=time(*end)
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def set_prefs(user, **changes):
    base = {"channels": {}, "reminder_lead_minutes": [60], "quiet_start": None, "quiet_end": None}
    return update_preferences(user, actor=user, **{**base, **changes})


def signed_in(user):
    client = Client()
    client.login(email=user.email, password=PASSWORD)
    return client


# --- notify --------------------------------------------------------------------------------------


def test_notify_stores_an_unread_notification_for_the_member(member):
    n = notify(member, kind=KIND, title="Tuesday circle moved", body="Now at 20:00.", url="/x/")
    assert n.user == member and n.kind == KIND and n.read_at is None and n.in_app
    assert (n.title, n.body, n.url) == ("Tuesday circle moved", "Now at 20:00.", "/x/")


def test_a_repeated_notify_with_the_same_dedupe_key_returns_the_first_and_makes_nothing_new(
    member,
):
    first = notify(member, kind=KIND, title="Moved", dedupe_key="occ:7:moved")
    second = notify(member, kind=KIND, title="Moved again", dedupe_key="occ:7:moved")
    assert second.pk == first.pk
    assert Notification.objects.filter(user=member).count() == 1


def test_the_same_dedupe_key_for_two_members_makes_one_each(member, outsider):
    notify(member, kind=KIND, title="Moved", dedupe_key="occ:7:moved")
    notify(outsider, kind=KIND, title="Moved", dedupe_key="occ:7:moved")
    assert Notification.objects.count() == 2


def test_notifications_without_a_dedupe_key_are_never_merged(member):
    notify(member, kind=KIND, title="One")
    notify(member, kind=KIND, title="Two")
    assert Notification.objects.filter(user=member).count() == 2


def test_notify_writes_inside_the_callers_transaction_and_a_rollback_takes_it_back(member):
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(member, kind=KIND, title="Moved")
        raise RuntimeError
    assert not Notification.objects.exists()


def test_notify_refuses_an_unknown_kind_or_a_strange_link(member):
    with pytest.raises(DomainError):
        notify(member, kind="party", title="Hello")
    with pytest.raises(DomainError):
        notify(member, kind=KIND, title="Hello", url="javascript:alert(1)")
    assert not Notification.objects.exists()


def test_email_is_wanted_by_default_only_for_the_kinds_that_matter_most(member):
    emailed = {
        kind
        for kind in NotificationKind
        if notify(member, kind=kind, title=f"About {kind}").email_pending
    }
    assert emailed == {
        NotificationKind.MEETING_REMINDER,
        NotificationKind.MEETING_CHANGED,
        NotificationKind.SEAT_OFFERED,
        NotificationKind.MODERATION_ACTION,
        NotificationKind.MODERATOR_ALERT,
    }
    assert Notification.objects.filter(user=member, in_app=True).count() == len(NotificationKind)


def test_a_kind_turned_off_in_both_channels_makes_no_notification(member):
    set_prefs(member, channels={KIND: {"in_app": False, "email": False}})
    assert notify(member, kind=KIND, title="Moved") is None
    assert not Notification.objects.exists()


def test_email_only_kinds_are_stored_for_the_email_but_kept_out_of_the_bell(member):
    set_prefs(member, channels={KIND: {"in_app": False, "email": True}})
    n = notify(member, kind=KIND, title="Moved")
    assert not n.in_app and n.email_pending
    assert unread_notification_count(member) == 0


def test_after_commit_the_email_task_is_enqueued_once(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify(member, kind=KIND, title="Moved")
    # One live event and one email enqueue.
    assert len(callbacks) == 2


def test_inside_quiet_hours_the_email_waits_for_their_end(member):
    local_now = timezone.now().astimezone(member.zone)
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local_now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    set_prefs(member, quiet_start=start, quiet_end=end)
    n = notify(member, kind=KIND, title="Moved")
    assert n.email_pending and n.email_after > n.created_at
    assert n.pk not in due_email_ids(now=n.created_at)
    assert n.pk in due_email_ids(now=n.email_after)


# --- Preferences ---------------------------------------------------------------------------------


def test_preferences_default_to_reminders_a_day_and_an_hour_before_and_no_quiet_hours(member):
    prefs = NotificationPreference.for_member(member)
    assert prefs.pk is None
    assert prefs.reminder_lead_minutes == [1440, 60]
    assert not prefs.has_quiet_hours


def test_preferences_are_saved_with_quiet_hours_across_midnight(member):
    set_prefs(
        member,
        channels={KIND: {"email": False}},
        reminder_lead_minutes=[15, 1440],
        quiet_start=time(22),
        quiet_end=time(7),
        time_zone="Europe/London",
    )
    prefs = NotificationPreference.objects.get(user=member)
    assert prefs.reminder_lead_minutes == [1440, 15]
    assert (prefs.quiet_start, prefs.quiet_end) == (time(22), time(7))
    assert not prefs.wants(KIND, "email") and prefs.wants(KIND, "in_app")
    member.refresh_from_db()
    assert member.time_zone == "Europe/London"


def test_no_reminders_at_all_is_a_choice(member):
    set_prefs(member, reminder_lead_minutes=[])
    assert NotificationPreference.objects.get(user=member).reminder_lead_minutes == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"quiet_start": time(22), "quiet_end": time(22)}, "quiet_hours_empty"),
        ({"quiet_start": time(22), "quiet_end": None}, "quiet_hours_incomplete"),
        ({"reminder_lead_minutes": [30]}, "bad_lead_time"),
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown_time_zone"),
        ({"channels": {"party": {"email": True}}}, "unknown_kind"),
    ],
)
def test_bad_preferences_are_refused_and_nothing_is_saved(member, changes, code):
    with pytest.raises(DomainError) as error:
        set_prefs(member, **changes)
    assert error.value.code == code
    assert not NotificationPreference.objects.filter(user=member).exists()
    member.refresh_from_db()
    assert member.time_zone == "Europe/Berlin"


def test_only_the_member_changes_their_own_preferences(member, outsider):
    with pytest.raises(PermissionDenied):
        update_preferences(
            member,
            actor=outsider,
            channels={},
            reminder_lead_minutes=[],
            quiet_start=None,
            quiet_end=None,
        )


# --- Quiet hours ---------------------------------------------------------------------------------


def test_quiet_hours_within_one_day():
    prefs = prefs_for("UTC", (13, 0), (15, 0))
    assert not in_quiet_hours(prefs, utc(2026, 3, 10, 12, 59))
    assert in_quiet_hours(prefs, utc(2026, 3, 10, 13, 0))
    assert in_quiet_hours(prefs, utc(2026, 3, 10, 14, 59))
    assert not in_quiet_hours(prefs, utc(2026, 3, 10, 15, 0))
    assert quiet_hours_end(prefs, utc(2026, 3, 10, 14)) == utc(2026, 3, 10, 15)


def test_quiet_hours_across_midnight_in_the_members_time_zone():
    prefs = prefs_for("Europe/Berlin", (22, 0), (7, 0))  # UTC+1 in January
    assert not in_quiet_hours(prefs, utc(2026, 1, 14, 20, 59))  # 21:59 Berlin
    assert in_quiet_hours(prefs, utc(2026, 1, 14, 21, 0))  # 22:00 Berlin
    assert in_quiet_hours(prefs, utc(2026, 1, 14, 23, 30))  # 00:30 Berlin, next day
    assert not in_quiet_hours(prefs, utc(2026, 1, 15, 6, 0))  # 07:00 Berlin
    # Evening: ends tomorrow morning. After midnight: ends this morning.
    assert quiet_hours_end(prefs, utc(2026, 1, 14, 21, 30)) == utc(2026, 1, 15, 6)
    assert quiet_hours_end(prefs, utc(2026, 1, 15, 2, 0)) == utc(2026, 1, 15, 6)


def test_outside_quiet_hours_their_end_is_now_and_no_quiet_hours_are_never_quiet():
    prefs = prefs_for("UTC", (22, 0), (7, 0))
    assert quiet_hours_end(prefs, utc(2026, 1, 14, 12)) == utc(2026, 1, 14, 12)
    none = NotificationPreference(user=User(time_zone="UTC"))
    assert not in_quiet_hours(none, utc(2026, 1, 14, 3))


def test_quiet_hours_over_the_london_spring_forward_night_end_at_seven_local():
    # 29 March 2026: clocks go from 01:00 GMT to 02:00 BST. The night is an hour shorter.
    prefs = prefs_for("Europe/London", (22, 0), (7, 0))
    start = utc(2026, 3, 28, 22, 0)  # 22:00 GMT
    assert in_quiet_hours(prefs, start)
    end = quiet_hours_end(prefs, start)
    assert end == utc(2026, 3, 29, 6, 0)  # 07:00 BST
    assert end - start == timedelta(hours=8)
    assert in_quiet_hours(prefs, utc(2026, 3, 29, 1, 30))  # 02:30 BST, just after the jump
    assert not in_quiet_hours(prefs, utc(2026, 3, 29, 6, 0))


def test_quiet_hours_over_the_london_fall_back_night_end_at_seven_local():
    # 25 October 2026: clocks go from 02:00 BST back to 01:00 GMT. The night is an hour longer.
    prefs = prefs_for("Europe/London", (22, 0), (7, 0))
    start = utc(2026, 10, 24, 21, 0)  # 22:00 BST
    end = quiet_hours_end(prefs, start)
    assert end == utc(2026, 10, 25, 7, 0)  # 07:00 GMT
    assert end - start == timedelta(hours=10)
    assert in_quiet_hours(prefs, utc(2026, 10, 25, 0, 30))  # 01:30 BST, first time
    assert in_quiet_hours(prefs, utc(2026, 10, 25, 1, 30))  # 01:30 GMT, second time


def test_quiet_hours_ending_inside_the_skipped_hour_end_when_the_clocks_jump():
    prefs = prefs_for("Europe/London", (23, 0), (1, 30))  # 01:30 does not exist on 29 March
    end = quiet_hours_end(prefs, utc(2026, 3, 28, 23, 30))
    assert end == utc(2026, 3, 29, 1, 0)  # the jump from 01:00 GMT to 02:00 BST
    assert not in_quiet_hours(prefs, end)


def test_quiet_hours_ending_inside_the_repeated_hour_end_the_first_time_it_strikes():
    prefs = prefs_for("Europe/London", (23, 0), (1, 30))
    end = quiet_hours_end(prefs, utc(2026, 10, 24, 22, 30))  # 23:30 BST
    assert end == utc(2026, 10, 25, 0, 30)  # 01:30 BST, the first 01:30


# --- Email ---------------------------------------------------------------------------------------


def test_the_email_is_plain_text_and_html_with_a_one_click_unsubscribe(member):
    n = notify(member, kind=KIND, title="Tuesday circle moved", body="Now at 20:00.", url="/m/1/")
    assert send_notification_email(n.pk)
    [email] = mail.outbox
    assert email.to == ["willow@example.test"]
    assert email.subject == "Tuesday circle moved"
    assert "Hello Willow," in email.body and "Now at 20:00." in email.body
    assert "http://localhost:8000/m/1/" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html" and "Tuesday circle moved" in html
    unsubscribe = email.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://localhost:8000/notifications/unsubscribe/")
    assert unsubscribe.strip("<>") in email.body
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    n.refresh_from_db()
    assert n.emailed_at is not None and not n.email_pending


def test_running_the_email_task_twice_sends_one_email(member):
    n = notify(member, kind=KIND, title="Moved")
    task_send_notification_email.apply(kwargs={"notification_id": n.pk})
    task_send_notification_email.apply(kwargs={"notification_id": n.pk})
    assert len(mail.outbox) == 1


def test_a_notification_read_in_the_app_is_not_emailed(member):
    n = notify(member, kind=KIND, title="Moved")
    services.mark_notification_read(member, actor=member, notification_id=n.pk)
    assert not send_notification_email(n.pk)
    assert mail.outbox == []
    assert n.pk not in due_email_ids(now=timezone.now() + timedelta(hours=1))


def test_no_email_for_a_kind_whose_email_is_off(member):
    n = notify(member, kind=NotificationKind.REPORT_OUTCOME, title="About your report")
    assert not n.email_pending
    assert not send_notification_email(n.pk)
    assert mail.outbox == []


def test_inside_quiet_hours_the_task_holds_the_email_and_the_sweep_sends_it_after(member):
    set_prefs(member, quiet_start=time(22), quiet_end=time(7), time_zone="UTC")
    n = notify(member, kind=KIND, title="Moved")
    night = utc(2026, 1, 14, 23, 0)
    Notification.objects.filter(pk=n.pk).update(created_at=night, email_after=night)

    assert not send_notification_email(n.pk, now=night)
    assert mail.outbox == []
    n.refresh_from_db()
    assert n.email_pending and n.email_after == utc(2026, 1, 15, 7, 0)
    assert n.pk not in due_email_ids(now=utc(2026, 1, 15, 6, 59))
    assert due_email_ids(now=utc(2026, 1, 15, 7, 0)) == [n.pk]
    assert send_notification_email(n.pk, now=utc(2026, 1, 15, 7, 0))
    assert len(mail.outbox) == 1


def test_the_sweep_leaves_fresh_emails_to_their_own_task_and_picks_up_lost_ones(member):
    n = notify(member, kind=KIND, title="Moved")
    assert n.pk not in due_email_ids(now=n.created_at + timedelta(minutes=1))
    assert n.pk in due_email_ids(now=n.created_at + timedelta(minutes=6))
    assert n.pk not in due_email_ids(now=n.created_at + timedelta(days=3))  # too old to send


class FailingFirstBackend(_LocmemBackend):
    failures_left = 0

    def send_messages(self, messages):
        if FailingFirstBackend.failures_left > 0:
            FailingFirstBackend.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("the test SMTP server hung up")
        return super().send_messages(messages)


@pytest.fixture
def smtp_fails_once(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FailingFirstBackend"
    FailingFirstBackend.failures_left = 1
    yield
    FailingFirstBackend.failures_left = 0


def test_an_smtp_failure_rolls_back_the_claim_so_the_next_try_sends(member, smtp_fails_once):
    n = notify(member, kind=KIND, title="Moved")
    with pytest.raises(smtplib.SMTPException):
        send_notification_email(n.pk)
    n.refresh_from_db()
    assert n.email_pending and n.emailed_at is None
    assert send_notification_email(n.pk)
    assert len(mail.outbox) == 1


def test_the_email_task_retries_after_an_smtp_failure_and_sends_once(member, smtp_fails_once):
    n = notify(member, kind=KIND, title="Moved")
    result = task_send_notification_email.apply(kwargs={"notification_id": n.pk})
    assert result.successful()
    assert len(mail.outbox) == 1
    assert FailingFirstBackend.failures_left == 0


def test_the_email_task_is_configured_to_back_off_and_give_up_eventually():
    task = task_send_notification_email
    assert smtplib.SMTPException in task.autoretry_for and OSError in task.autoretry_for
    assert task.retry_backoff and task.max_retries


def test_email_logs_hold_ids_not_addresses_titles_or_bodies(member, caplog):
    caplog.set_level("DEBUG")
    n = notify(member, kind=KIND, title="Secret title", body="Secret body")
    send_notification_email(n.pk)
    logged = caplog.text
    assert "willow@example.test" not in logged
    assert "Secret" not in logged


# --- Unsubscribe ---------------------------------------------------------------------------------


def unsubscribe_url(user, kind=KIND):
    return reverse("notification_unsubscribe", args=[unsubscribe_token(user, kind)])


def email_wanted(user, kind=KIND):
    return NotificationPreference.for_member(user).wants(kind, "email")


def test_opening_the_unsubscribe_link_asks_first_and_changes_nothing(member):
    response = Client().get(unsubscribe_url(member))
    assert response.status_code == 200
    assert "Stop these emails" in response.content.decode()
    assert email_wanted(member)


def test_confirming_turns_off_that_kinds_email_only(member):
    response = Client().post(unsubscribe_url(member))
    assert response.status_code == 200
    assert "won't get emails about" in response.content.decode()
    assert not email_wanted(member)
    assert email_wanted(member, NotificationKind.SEAT_OFFERED)
    assert NotificationPreference.for_member(member).wants(KIND, "in_app")


def test_a_mail_clients_one_click_post_without_csrf_works(member):
    client = Client(enforce_csrf_checks=True)
    response = client.post(unsubscribe_url(member), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not email_wanted(member)


def test_unsubscribing_cancels_emails_still_waiting_for_quiet_hours_to_end(member):
    n = notify(member, kind=KIND, title="Moved")
    Client().post(unsubscribe_url(member))
    assert not send_notification_email(n.pk)
    assert mail.outbox == []


def test_a_forged_unsubscribe_link_changes_nothing_and_says_so(member):
    token = unsubscribe_token(member, KIND)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    url = reverse("notification_unsubscribe", args=[forged])
    response = Client().post(url)
    assert response.status_code == 400
    assert "nothing was changed" in response.content.decode()
    assert email_wanted(member)


def test_an_unsubscribe_link_signed_for_another_purpose_is_refused(member):
    token = signing.TimestampSigner(salt="another.purpose").sign_object({"u": member.pk, "k": KIND})
    response = Client().post(reverse("notification_unsubscribe", args=[token]))
    assert response.status_code == 400
    assert email_wanted(member)


def test_an_expired_unsubscribe_link_changes_nothing_and_says_so(member, monkeypatch):
    long_ago = datetime.now(tz=UTC) - timedelta(days=61)
    monkeypatch.setattr(signing.time, "time", lambda: long_ago.timestamp())
    token = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT).sign_object({"u": member.pk, "k": KIND})
    monkeypatch.undo()
    response = Client().post(reverse("notification_unsubscribe", args=[token]))
    assert response.status_code == 400
    assert "more than 60 days old" in response.content.decode()
    assert email_wanted(member)


def test_someone_elses_unsubscribe_link_changes_nothing_for_either_member(member, outsider):
    response = signed_in(outsider).post(unsubscribe_url(member))
    assert response.status_code == 403
    assert "belongs to another account" in response.content.decode()
    assert email_wanted(member) and email_wanted(outsider)


# --- Pages ---------------------------------------------------------------------------------------


def test_the_bell_shows_the_unread_count_on_every_page(member):
    notify(member, kind=KIND, title="One")
    notify(member, kind=KIND, title="Two")
    page = signed_in(member).get(reverse("help")).content.decode()
    assert 'aria-label="Notifications, 2 unread"' in page
    assert "js/notifications.js" in page


def test_without_unread_notifications_the_bell_just_says_notifications(member):
    page = signed_in(member).get(reverse("home")).content.decode()
    assert 'aria-label="Notifications"' in page


def test_visitors_see_no_bell(db):
    page = Client().get(reverse("home")).content.decode()
    assert "js/notifications.js" not in page and "data-bell" not in page


def test_the_notifications_page_lists_newest_first_and_pages(member):
    for i in range(23):
        notify(member, kind=KIND, title=f"Note {i:02d}")
    client = signed_in(member)
    first = client.get(reverse("notifications")).content.decode()
    assert first.index("Note 22") < first.index("Note 21")
    assert "Note 02" not in first and "Page 1 of 2" in first
    second = client.get(reverse("notifications") + "?page=2").content.decode()
    assert "Note 02" in second and "Note 22" not in second


def test_a_member_sees_only_their_own_notifications(member, outsider):
    notify(outsider, kind=KIND, title="For Heron")
    page = signed_in(member).get(reverse("notifications")).content.decode()
    assert "For Heron" not in page


def test_marking_one_read(member):
    n = notify(member, kind=KIND, title="Moved")
    other = notify(member, kind=KIND, title="Other")
    response = signed_in(member).post(reverse("notification_read", args=[n.pk]))
    assert response.status_code == 302
    n.refresh_from_db()
    other.refresh_from_db()
    assert n.read_at is not None and other.read_at is None


def test_marking_someone_elses_notification_read_is_not_found_and_changes_nothing(member, outsider):
    n = notify(outsider, kind=KIND, title="For Heron")
    response = signed_in(member).post(reverse("notification_read", args=[n.pk]))
    assert response.status_code == 404
    n.refresh_from_db()
    assert n.read_at is None


def test_marking_all_read_and_that_it_needs_a_post(member):
    notify(member, kind=KIND, title="One")
    notify(member, kind=KIND, title="Two")
    client = signed_in(member)
    assert client.get(reverse("notifications_read_all")).status_code == 405
    client.post(reverse("notifications_read_all"))
    assert not Notification.objects.filter(user=member, read_at__isnull=True).exists()
    assert 'aria-label="Notifications"' in client.get(reverse("home")).content.decode()


def test_the_preferences_page_saves_choices(member):
    client = signed_in(member)
    assert client.get(reverse("notification_preferences")).status_code == 200
    response = client.post(
        reverse("notification_preferences"),
        {
            "in_app__meeting_changed": "on",
            "reminder_lead_minutes": ["15"],
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "time_zone": "Europe/London",
        },
    )
    assert response.status_code == 302
    prefs = NotificationPreference.objects.get(user=member)
    assert prefs.reminder_lead_minutes == [15]
    assert not prefs.wants(KIND, "email") and prefs.wants(KIND, "in_app")
    assert not prefs.wants(NotificationKind.SEAT_OFFERED, "in_app")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"quiet_start": "22:00", "quiet_end": "22:00", "time_zone": "UTC"},
            "Quiet hours need to end at a different time",
        ),
        (
            {"reminder_lead_minutes": ["30"], "time_zone": "UTC"},
            "1 day, 1 hour or 15 minutes",
        ),
        ({"time_zone": "Mars/Olympus_Mons"}, "recognise the time zone"),
    ],
)
def test_the_preferences_page_explains_bad_input_and_saves_nothing(member, data, message):
    response = signed_in(member).post(reverse("notification_preferences"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not NotificationPreference.objects.filter(user=member).exists()


def test_pages_need_a_signed_in_member(db):
    for name in ("notifications", "notification_preferences"):
        response = Client().get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_member_made_for_this_test_gets_defaults(db):
    who = make_member(display_name="Rowan")
    assert NotificationPreference.for_member(who).wants(KIND, "email")
