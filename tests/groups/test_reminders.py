"""Meeting reminders without Celery: when they fall due (quiet hours, midnight, daylight saving),
which rows exist as meetings, answers, memberships and preferences change, and sending them
exactly once (a worker killed mid-send, the task run twice, two beat processes at once, an
outage)."""

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from community.models import Notification, NotificationKind, NotificationPreference, User
from community.services import notify, update_preferences, update_profile
from groups import services
from groups.models import Occurrence, Reminder, ReminderStatus
from groups.services.reminders import (
    CLAIM_TIMEOUT,
    QUIET_MARGIN,
    claim_due_reminders,
    reminder_due_at,
    send_claimed_reminders,
    send_due_reminders,
    sync_meeting_reminders,
)
from groups.tasks import task_send_due_reminders
from tests.factories import make_meeting, make_member, make_membership, next_local

DAY, HOUR = 24 * 60, 60


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def prefs(zone="Europe/Berlin", quiet=None):
    """Unsaved preferences of an unsaved member: ``reminder_due_at`` is pure."""
    start, end = quiet or (None, None)
    return NotificationPreference(
        user=User(time_zone=zone),
        quiet_start=time(*start) if start else None,
        quiet_end=time(*end) if end else None,
    )


NIGHT = ((22, 0), (7, 0))  # 22:00-07:00, across midnight


# --- When: the pure rule ---------------------------------------------------------------------------


def test_without_quiet_hours_a_reminder_is_due_exactly_its_lead_time_ahead():
    start = utc(2026, 6, 10, 17, 0)
    assert reminder_due_at(starts_at=start, lead_minutes=DAY, prefs=prefs()) == start - timedelta(
        days=1
    )
    assert reminder_due_at(starts_at=start, lead_minutes=15, prefs=prefs()) == start - timedelta(
        minutes=15
    )


def test_a_reminder_outside_quiet_hours_is_not_moved():
    # Berlin is UTC+2 in June: the meeting is at 19:00, the reminder at 18:00.
    start = utc(2026, 6, 10, 17, 0)
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 16, 0)


def test_quiet_hours_end_is_not_quiet_so_a_reminder_then_is_not_moved():
    start = utc(2026, 6, 10, 6, 0)  # 08:00 Berlin; reminder at 07:00, the moment quiet hours end
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 5, 0)


def test_a_meeting_during_quiet_hours_is_reminded_just_before_they_begin():
    start = utc(2026, 6, 10, 21, 0)  # 23:00 Berlin; 1 hour ahead would be 22:00, quiet
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 20, 0) - QUIET_MARGIN  # 21:50 Berlin


def test_a_meeting_after_midnight_inside_quiet_hours_is_reminded_the_evening_before():
    start = utc(2026, 6, 11, 1, 0)  # 03:00 Berlin on the 11th; quiet since 22:00 on the 10th
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 20, 0) - QUIET_MARGIN  # 21:50 Berlin on the 10th


def test_a_meeting_soon_after_quiet_hours_is_reminded_before_they_begin():
    # 07:20 Berlin: at 07:00 only 20 of the 60 minutes asked for would be left.
    start = utc(2026, 6, 11, 5, 20)
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 20, 0) - QUIET_MARGIN


def test_a_meeting_well_after_quiet_hours_is_reminded_when_they_end():
    # 07:30 Berlin: at 07:00 half the lead time is still left, so the morning is better.
    start = utc(2026, 6, 11, 5, 30)
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 11, 5, 0)  # 07:00 Berlin


def test_a_day_ahead_reminder_falling_in_quiet_hours_waits_for_the_morning():
    # Thursday 06:00 Berlin; a day ahead is Wednesday 06:00, in Wednesday's early quiet hours.
    start = utc(2026, 6, 11, 4, 0)
    due = reminder_due_at(starts_at=start, lead_minutes=DAY, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 6, 10, 5, 0)  # Wednesday 07:00 Berlin


def test_quiet_hours_inside_one_day_work_the_same_way():
    afternoon = prefs(zone="America/New_York", quiet=((13, 0), (15, 0)))
    # 14:30 New York (EDT, UTC-4): reminder at 14:15 is quiet, meeting during them.
    during = utc(2026, 6, 10, 18, 30)
    assert (
        reminder_due_at(starts_at=during, lead_minutes=15, prefs=afternoon)
        == utc(2026, 6, 10, 17, 0) - QUIET_MARGIN
    )
    # 17:00 New York: an hour ahead is 16:00, outside; a day ahead is also fine.
    later = utc(2026, 6, 10, 21, 0)
    assert reminder_due_at(starts_at=later, lead_minutes=HOUR, prefs=afternoon) == utc(
        2026, 6, 10, 20, 0
    )


def test_the_member_s_own_time_zone_decides_what_is_quiet():
    start = utc(2026, 6, 10, 21, 0)  # 23:00 in Berlin, 14:00 in Los Angeles
    berlin = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    la = reminder_due_at(
        starts_at=start, lead_minutes=HOUR, prefs=prefs(zone="America/Los_Angeles", quiet=NIGHT)
    )
    assert berlin != la and la == start - timedelta(hours=1)


def test_on_the_spring_forward_night_the_morning_end_is_read_on_the_new_clock():
    # 29 March 2026: Berlin goes from 02:00 CET to 03:00 CEST. Meeting 07:30 CEST = 05:30 UTC.
    start = utc(2026, 3, 29, 5, 30)
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 3, 29, 5, 0)  # 07:00 CEST


def test_on_the_spring_forward_night_the_evening_start_is_read_on_the_old_clock():
    start = utc(2026, 3, 29, 1, 30)  # 03:30 CEST, during the quiet hours that began at 22:00 CET
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 3, 28, 21, 0) - QUIET_MARGIN  # 21:50 CET on the 28th


def test_quiet_hours_starting_inside_the_skipped_hour_begin_when_the_clocks_jump():
    # Quiet from 02:30, which does not exist on 29 March: they begin at 03:00 CEST (01:00 UTC).
    early = prefs(quiet=((2, 30), (6, 0)))
    start = utc(2026, 3, 29, 2, 0)  # 04:00 CEST; 15 minutes ahead is 03:45, quiet
    due = reminder_due_at(starts_at=start, lead_minutes=15, prefs=early)
    assert due == utc(2026, 3, 29, 1, 0) - QUIET_MARGIN


def test_on_the_fall_back_night_the_morning_end_is_read_on_the_new_clock():
    # 25 October 2026: Berlin goes from 03:00 CEST back to 02:00 CET. Meeting 07:30 CET.
    start = utc(2026, 10, 25, 6, 30)
    due = reminder_due_at(starts_at=start, lead_minutes=HOUR, prefs=prefs(quiet=NIGHT))
    assert due == utc(2026, 10, 25, 6, 0)  # 07:00 CET


@pytest.mark.parametrize("lead", [DAY, HOUR, 15])
@pytest.mark.parametrize(
    "quiet", [NIGHT, ((13, 0), (15, 0)), ((0, 0), (6, 30)), ((23, 45), (0, 15))]
)
@pytest.mark.parametrize("day", [utc(2026, 3, 28), utc(2026, 6, 10), utc(2026, 10, 24)])
def test_every_reminder_is_before_its_meeting_and_outside_quiet_hours(lead, quiet, day):
    """Meetings every 5 minutes for two days, across both daylight-saving changes."""
    from community.services import in_quiet_hours

    member = prefs(quiet=quiet)
    for step in range(0, 2 * 24 * 60, 5):
        start = day + timedelta(minutes=step)
        due = reminder_due_at(starts_at=start, lead_minutes=lead, prefs=member)
        assert due < start, start
        assert not in_quiet_hours(member, due), start
        assert not in_quiet_hours(member, due + QUIET_MARGIN - timedelta(seconds=1)) or (
            due == start - timedelta(minutes=lead)
        ), start


# --- Which rows exist ------------------------------------------------------------------------------


def rows(user, **filters):
    return Reminder.objects.filter(user=user, **filters)


def wanted(user):
    """(occurrence, lead) of the member's reminders that are waiting to go out."""
    return set(
        rows(user, status=ReminderStatus.PENDING).values_list("occurrence_id", "lead_minutes")
    )


def set_leads(user, leads, quiet=(None, None)):
    return update_preferences(
        user,
        actor=user,
        channels={},
        reminder_lead_minutes=leads,
        quiet_start=quiet[0],
        quiet_end=quiet[1],
    )


@pytest.fixture
def meeting(group, facilitator, member):
    """A weekly meeting, three sittings, the first over a week from now."""
    return make_meeting(
        group,
        actor=facilitator,
        starts_at=next_local(1, 19, zone="Europe/Berlin", weeks=1),
        time_zone="Europe/Berlin",
        recurrence="weekly",
        recurrence_count=3,
    )


def sittings(meeting):
    return list(Occurrence.objects.filter(meeting=meeting).order_by("starts_at"))


def test_scheduling_a_meeting_gives_every_member_a_reminder_per_lead_time(
    meeting, member, facilitator
):
    expected = {(o.pk, lead) for o in sittings(meeting) for lead in (DAY, HOUR)}
    assert wanted(member) == expected
    assert wanted(facilitator) == expected
    first = sittings(meeting)[0]
    row = rows(member, occurrence=first, lead_minutes=DAY).get()
    assert row.due_at == first.starts_at - timedelta(days=1)


def test_syncing_again_changes_nothing(meeting, member):
    before = list(Reminder.objects.order_by("pk").values_list("pk", "due_at", "status"))
    assert sync_meeting_reminders(meeting) == 0
    assert list(Reminder.objects.order_by("pk").values_list("pk", "due_at", "status")) == before


def test_not_going_drops_that_sitting_s_reminders_and_going_again_brings_back_the_same_rows(
    meeting, member
):
    first, second, _third = sittings(meeting)
    ids = set(rows(member, occurrence=first).values_list("pk", flat=True))
    services.rsvp(first, user=member, answer="not_going")
    assert not wanted(member) & {(first.pk, DAY), (first.pk, HOUR)}
    assert (second.pk, DAY) in wanted(member)
    assert set(rows(member, occurrence=first, status="dropped").values_list("pk", flat=True)) == ids

    services.rsvp(first, user=member, answer="maybe")
    assert set(rows(member, occurrence=first, status="pending").values_list("pk", flat=True)) == ids


def test_cancelling_a_sitting_or_the_series_drops_its_reminders(meeting, member, facilitator):
    first, second, third = sittings(meeting)
    services.cancel_occurrence(first, actor=facilitator)
    assert {o for o, _lead in wanted(member)} == {second.pk, third.pk}
    services.cancel_meeting(meeting, actor=facilitator)
    assert wanted(member) == set() and wanted(facilitator) == set()


def test_moving_a_sitting_moves_its_pending_reminders(meeting, member, facilitator):
    first = sittings(meeting)[0]
    new_start = first.starts_at + timedelta(days=2, hours=1)
    services.move_occurrence(first, actor=facilitator, starts_at=new_start)
    assert rows(member, occurrence=first, lead_minutes=HOUR).get().due_at == new_start - timedelta(
        hours=1
    )
    assert rows(member, occurrence=first, lead_minutes=DAY).get().due_at == new_start - timedelta(
        days=1
    )


def test_leaving_drops_the_member_s_reminders_and_joining_creates_them(group, meeting, member):
    services.leave_group(group, user=member)
    assert wanted(member) == set()
    assert rows(member, status="dropped").count() == 6

    newcomer = make_member(display_name="Alder")
    services.join_group(group, user=newcomer, agreement_version=group.agreement_version)
    assert wanted(newcomer) == {(o.pk, lead) for o in sittings(meeting) for lead in (DAY, HOUR)}


def test_choosing_no_reminders_drops_them_and_choosing_again_re_arms_them(
    meeting, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        set_leads(member, [])
    assert wanted(member) == set()
    with django_capture_on_commit_callbacks(execute=True):
        set_leads(member, [15])
    assert wanted(member) == {(o.pk, 15) for o in sittings(meeting)}


def test_new_quiet_hours_and_a_new_time_zone_recompute_due_times(
    meeting, member, django_capture_on_commit_callbacks
):
    first = sittings(meeting)[0]  # 19:00 Berlin
    with django_capture_on_commit_callbacks(execute=True):
        set_leads(member, [HOUR], quiet=(time(17, 0), time(23, 0)))
    row = rows(member, occurrence=first, lead_minutes=HOUR).get()
    # 18:00 is quiet and the meeting is during them: just before 17:00 Berlin.
    begin = first.starts_at - timedelta(hours=2)
    assert row.due_at == begin - QUIET_MARGIN

    with django_capture_on_commit_callbacks(execute=True):
        update_profile(member, display_name="Willow", time_zone="Asia/Tokyo")
    row.refresh_from_db()
    assert row.due_at == first.starts_at - timedelta(hours=1)  # 02:00 in Tokyo, not quiet


def test_an_unsubscribe_from_reminder_emails_keeps_the_reminders(
    meeting, member, django_capture_on_commit_callbacks
):
    from community.services import set_email_preference

    before = wanted(member)
    with django_capture_on_commit_callbacks(execute=True):
        set_email_preference(member, kind=NotificationKind.MEETING_REMINDER, enabled=False)
    assert wanted(member) == before


def test_a_reminder_whose_time_already_passed_is_not_armed(group, facilitator, member):
    soon = timezone.now() + timedelta(minutes=30)
    meeting = make_meeting(group, actor=facilitator, starts_at=soon, time_zone="Europe/Berlin")
    assert wanted(member) == set()  # a day and an hour ahead have both passed
    make_membership(group, make_member())  # unrelated change
    assert Reminder.objects.filter(occurrence__meeting=meeting).count() == 0


def test_archiving_the_group_drops_reminders_and_bringing_it_back_re_arms_them(
    group, meeting, member, facilitator
):
    before = wanted(member)
    services.archive_group(group, actor=facilitator)
    assert wanted(member) == set()
    services.archive_group(group, actor=facilitator, archived=False)
    assert wanted(member) == before


# --- Sending -------------------------------------------------------------------------------------


def reminders_sent(user=None):
    qs = Notification.objects.filter(kind=NotificationKind.MEETING_REMINDER)
    return qs.filter(user=user) if user else qs


@pytest.fixture
def one_reminder(group, facilitator, member, django_capture_on_commit_callbacks):
    """Willow (Berlin) wants a day's notice of a one-off meeting at 19:00 Berlin; Maple none."""
    with django_capture_on_commit_callbacks(execute=True):
        set_leads(member, [DAY])
        set_leads(facilitator, [])
    make_meeting(
        group,
        actor=facilitator,
        title="Tuesday circle",
        starts_at=next_local(1, 19, zone="Europe/Berlin", weeks=1),
        time_zone="Europe/Berlin",
    )
    return Reminder.objects.get(user=member)


def test_a_due_reminder_is_sent_once_with_calm_specific_words(one_reminder, member):
    counts = send_due_reminders(now=one_reminder.due_at)
    assert counts["sent"] == 1
    n = reminders_sent(member).get()
    assert n.title == "Tuesday circle: tomorrow at 19:00"
    assert n.body == "Your group “Evening circle” meets tomorrow at 19:00 your time."
    assert n.url == reverse("groups:meetings", kwargs={"slug": "evening-circle"})
    assert n.dedupe_key == f"reminder:{one_reminder.pk}"
    assert n.email_pending  # emailed by default
    one_reminder.refresh_from_db()
    assert one_reminder.status == ReminderStatus.SENT and one_reminder.sent_at is not None


def test_a_reminder_is_not_sent_before_it_is_due(one_reminder, member):
    assert send_due_reminders(now=one_reminder.due_at - timedelta(seconds=1))["sent"] == 0
    assert not reminders_sent().exists()
    assert Reminder.objects.get(pk=one_reminder.pk).status == ReminderStatus.PENDING


def test_the_task_run_twice_sends_once(one_reminder, member):
    send_due_reminders(now=one_reminder.due_at)
    assert send_due_reminders(now=one_reminder.due_at)["sent"] == 0
    # The task itself (beat's entry point), run twice more with the real clock.
    assert task_send_due_reminders() == 0 and task_send_due_reminders() == 0
    assert reminders_sent(member).count() == 1


def test_a_worker_killed_mid_send_is_recovered_by_the_sweep_and_sends_once(one_reminder, member):
    due = one_reminder.due_at
    assert claim_due_reminders(now=due) == [one_reminder.pk]
    # ... the worker dies here, before its send committed. Runs that come soon after leave the
    # claim alone (that worker might only be slow):
    assert send_due_reminders(now=due + timedelta(seconds=30))["sent"] == 0
    assert not reminders_sent().exists()
    # After the claim timeout the sweep puts it back and it goes, once.
    later = due + CLAIM_TIMEOUT + timedelta(seconds=1)
    counts = send_due_reminders(now=later)
    assert counts["requeued"] == 1 and counts["sent"] == 1
    assert send_due_reminders(now=later + CLAIM_TIMEOUT * 2)["sent"] == 0
    assert reminders_sent(member).count() == 1


def test_a_send_whose_notification_committed_but_was_re_queued_makes_no_second_one(
    one_reminder, member
):
    """Belt and braces: even if the row were handed out again after its notification was made,
    the dedupe key ``reminder:<id>`` returns the first notification."""
    first = notify(
        member,
        kind=NotificationKind.MEETING_REMINDER,
        title="Tuesday circle: tomorrow at 19:00",
        dedupe_key=f"reminder:{one_reminder.pk}",
    )
    send_due_reminders(now=one_reminder.due_at)
    assert list(reminders_sent(member)) == [first]


def hour_ahead_members(group, facilitator, count, capture_on_commit):
    """``count`` new members of ``group`` who want a reminder an hour ahead (the facilitator
    none), and a meeting next week: their reminders, all due at the same moment."""
    people = [make_member() for _ in range(count)]
    with capture_on_commit(execute=True):
        for person in people:
            make_membership(group, person)
            set_leads(person, [HOUR])
        set_leads(facilitator, [])
    make_meeting(group, actor=facilitator, starts_at=next_local(2, 12, weeks=1))
    return people


def test_two_runs_interleaved_take_different_rows(
    group, facilitator, django_capture_on_commit_callbacks
):
    hour_ahead_members(group, facilitator, 6, django_capture_on_commit_callbacks)
    due = Reminder.objects.first().due_at
    first_run = claim_due_reminders(now=due, limit=3)  # beat process A claims some ...
    assert send_due_reminders(now=due)["sent"] == 3  # ... B runs in full meanwhile
    from groups.services.reminders import send_claimed_reminder

    assert [send_claimed_reminder(pk, now=due) for pk in first_run] == ["sent"] * 3
    assert reminders_sent().count() == 6
    assert len(set(reminders_sent().values_list("user", flat=True))) == 6


def test_a_batch_decides_each_row_on_its_own_and_run_again_sends_nothing_twice(
    group, facilitator, django_capture_on_commit_callbacks
):
    from groups.models import Membership

    people = hour_ahead_members(group, facilitator, 4, django_capture_on_commit_callbacks)
    removed, changed_mind = people[0], people[1]
    # Changes the groups services don't make, so only sending time can catch them: a removal
    # by moderation, and preferences written without a sync.
    Membership.objects.filter(group=group, user=removed).update(status="removed")
    NotificationPreference.objects.filter(user=changed_mind).update(reminder_lead_minutes=[DAY])
    due = Reminder.objects.first().due_at
    claimed = claim_due_reminders(now=due)
    assert len(claimed) == 4

    counts = send_claimed_reminders(claimed, now=due)
    assert (counts["sent"], counts["dropped"], counts["skipped"]) == (2, 2, 0)
    assert set(reminders_sent().values_list("user", flat=True)) == {p.pk for p in people[2:]}
    # The same batch handed over again (a retried task, a second beat): every row is done.
    again = send_claimed_reminders(claimed, now=due)
    assert (again["sent"], again["dropped"], again["skipped"]) == (0, 0, 4)
    assert reminders_sent().count() == 2


def test_a_batch_that_fails_midway_keeps_its_rows_claimed_and_the_rest_go_on_later_runs(
    group, facilitator, django_capture_on_commit_callbacks
):
    import zoneinfo

    hour_ahead_members(group, facilitator, 6, django_capture_on_commit_callbacks)
    ordered = list(Reminder.objects.order_by("due_at", "pk"))  # the order they are claimed in
    due = ordered[0].due_at
    broken = ordered[3].user_id  # in the second batch of two

    # A row the sending code cannot handle (a time zone no service would write), in the middle
    # of a batch: the batch fails after the one before it committed.
    User.objects.filter(pk=broken).update(time_zone="Nowhere/Atlantis")
    with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
        send_due_reminders(now=due, batch=2)
    status = dict(Reminder.objects.values_list("pk", "status"))
    assert [status[r.pk] for r in ordered] == [
        ReminderStatus.SENT,
        ReminderStatus.SENT,
        ReminderStatus.CLAIMED,  # nothing of the failed batch was written ...
        ReminderStatus.CLAIMED,
        ReminderStatus.PENDING,  # ... and the rows after it were never claimed
        ReminderStatus.PENDING,
    ]
    assert set(reminders_sent().values_list("user", flat=True)) == {r.user_id for r in ordered[:2]}

    User.objects.filter(pk=broken).update(time_zone="Europe/London")  # mended
    # The next run sends the rows nobody had claimed; the failed batch waits for the sweep.
    assert send_due_reminders(now=due + timedelta(seconds=30), batch=2)["sent"] == 2
    counts = send_due_reminders(now=due + CLAIM_TIMEOUT + timedelta(seconds=1), batch=2)
    assert counts["requeued"] == 2 and counts["sent"] == 2
    assert not Reminder.objects.exclude(status=ReminderStatus.SENT).exists()
    keys = list(reminders_sent().values_list("dedupe_key", flat=True))
    assert sorted(keys) == sorted(f"reminder:{r.pk}" for r in ordered)


def test_after_an_outage_reminders_before_their_meeting_still_go_and_the_rest_are_dropped(
    group, facilitator, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        set_leads(member, [DAY, HOUR])
        set_leads(facilitator, [])
    meeting = make_meeting(group, actor=facilitator, starts_at=next_local(3, 10, weeks=1))
    start = sittings(meeting)[0].starts_at
    # The worker was away from a day before until 30 minutes before the meeting: one
    # reminder goes (the nearer one, in words true now), the day-ahead one is dropped.
    counts = send_due_reminders(now=start - timedelta(minutes=30))
    assert counts["sent"] == 1 and counts["dropped"] == 1
    assert reminders_sent(member).get().title == "Tuesday circle: in 30 minutes, at 11:00"
    assert set(rows(member).values_list("lead_minutes", "status")) == {
        (HOUR, ReminderStatus.SENT),
        (DAY, ReminderStatus.DROPPED),
    }

    # A second meeting whose start passed during the outage: nothing late.
    other = make_meeting(
        group, actor=facilitator, title="Thursday circle", starts_at=start + timedelta(days=2)
    )
    counts = send_due_reminders(now=sittings(other)[0].starts_at + timedelta(minutes=1))
    assert counts["sent"] == 0 and counts["dropped"] == 2
    assert reminders_sent(member).count() == 1
    assert set(
        Reminder.objects.filter(occurrence__meeting=other).values_list("status", flat=True)
    ) == {ReminderStatus.DROPPED}


def test_a_reminder_no_longer_wanted_at_sending_time_is_dropped_not_sent(
    one_reminder, member, group
):
    """A member removed by moderation (a status change groups' services don't make) is
    caught when the row is sent."""
    from groups.models import Membership

    Membership.objects.filter(group=group, user=member).update(status="removed")
    counts = send_due_reminders(now=one_reminder.due_at)
    assert counts["dropped"] == 1 and counts["sent"] == 0
    assert not reminders_sent().exists()


def test_beat_runs_the_reminder_task_every_30_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["send-due-reminders"]
    assert entry["task"] == task_send_due_reminders.name and entry["schedule"] == 30


# --- Two beat processes at once (real threads, own connections) ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_racing_send_every_reminder_exactly_once():
    from tests.factories import make_group

    circle = make_group(capacity=20)
    host = make_member()
    make_membership(circle, host, role="facilitator")
    people = [make_member() for _ in range(15)]
    for person in people:
        make_membership(circle, person)
    for _ in range(2):
        make_meeting(circle, actor=host, starts_at=next_local(4, 18, weeks=1))
    due = Reminder.objects.order_by("due_at").first().due_at  # the day-ahead ones
    total = Reminder.objects.filter(due_at__lte=due).count()
    assert total >= 32

    barrier = threading.Barrier(3)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(send_due_reminders(now=due))
        except Exception as error:  # handed back to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(r["sent"] for r in results) == total
    keys = list(reminders_sent().values_list("dedupe_key", flat=True))
    assert len(keys) == len(set(keys)) == total
    assert not Reminder.objects.exclude(status=ReminderStatus.SENT).filter(due_at__lte=due).exists()


@pytest.mark.django_db(transaction=True)
def test_runners_claiming_at_the_same_moment_take_disjoint_rows():
    from tests.factories import make_group

    circle = make_group(capacity=20)
    host = make_member()
    make_membership(circle, host, role="facilitator")
    for _ in range(19):
        make_membership(circle, make_member())
    make_meeting(circle, actor=host, starts_at=next_local(4, 18, weeks=1))
    due = Reminder.objects.order_by("due_at").first().due_at  # the day-ahead ones
    wanted = set(Reminder.objects.filter(due_at__lte=due).values_list("pk", flat=True))
    assert len(wanted) == 20

    barrier = threading.Barrier(4)
    taken, errors = [], []

    def runner():
        try:
            barrier.wait(timeout=30)
            while claimed := claim_due_reminders(now=due, limit=2):
                taken.append(claimed)
        except Exception as error:  # handed back to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    every = [pk for claimed in taken for pk in claimed]
    assert len(every) == len(set(every))  # no row claimed twice ...
    assert set(every) == wanted  # ... and none left behind
