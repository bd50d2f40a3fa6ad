"""Meetings: scheduling and recurrence, bad input, permissions, RSVPs, moving and cancelling,
schedule edits, the occurrence window and its Celery task."""

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest
import time_machine
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from community.errors import DomainError, PermissionDenied
from groups import selectors, services, signals
from groups.models import Meeting, Occurrence, OccurrenceStatus, Rsvp
from groups.services.meetings import HORIZON, OCCURRENCE_CAP, extend_all_occurrences
from groups.tasks import task_extend_occurrences
from tests.factories import make_group, make_meeting, make_member, make_membership, next_local

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def local_starts(meeting, zone=None):
    zone = zone or zoneinfo.ZoneInfo(meeting.time_zone)
    return [o.starts_at.astimezone(zone) for o in meeting.occurrences.order_by("starts_at")]


@pytest.fixture
def events():
    """Every occurrence_changed event sent during the test, as kwargs dicts."""
    received = []

    def listener(sender, **kwargs):
        kwargs.pop("signal", None)
        received.append(kwargs)

    signals.occurrence_changed.connect(listener, weak=False)
    yield received
    signals.occurrence_changed.disconnect(listener)


# --- Recurrence -----------------------------------------------------------------------------


def test_a_one_off_meeting_has_exactly_one_occurrence(group, facilitator):
    start = next_local(2, 18, 30)
    meeting = make_meeting(group, actor=facilitator, starts_at=start, duration_minutes=90)
    (occurrence,) = meeting.occurrences.all()
    assert occurrence.starts_at == start
    assert occurrence.original_start == start
    assert occurrence.ends_at == start + timedelta(minutes=90)
    assert occurrence.status == OccurrenceStatus.SCHEDULED


def test_a_weekly_meeting_keeps_19_00_london_time_across_daylight_saving_changes(
    group, facilitator
):
    meeting = make_meeting(
        group, actor=facilitator, starts_at=next_local(1, 19), recurrence="weekly"
    )
    starts = local_starts(meeting)
    # A year of Tuesdays spans both clock changes, so the UTC hour changes but 19:00 doesn't.
    assert len(starts) == OCCURRENCE_CAP
    assert {(s.weekday(), s.hour, s.minute) for s in starts} == {(1, 19, 0)}
    assert {s.utcoffset() for s in starts} == {timedelta(0), timedelta(hours=1)}
    assert {s.astimezone(UTC).hour for s in starts} == {18, 19}
    assert {(b.date() - a.date()).days for a, b in pairwise(starts)} == {7}


def test_a_fortnightly_meeting_comes_every_second_week_at_the_same_local_time(group, facilitator):
    meeting = make_meeting(
        group,
        actor=facilitator,
        starts_at=next_local(3, 10, 15, zone="America/New_York"),
        time_zone="America/New_York",
        recurrence="biweekly",
        recurrence_count=6,
    )
    starts = local_starts(meeting)
    assert len(starts) == 6
    assert {(s.weekday(), s.hour, s.minute) for s in starts} == {(3, 10, 15)}
    assert [(b.date() - a.date()).days for a, b in pairwise(starts)] == [14] * 5


def test_a_monthly_meeting_falls_on_the_same_nth_weekday_every_month(group, facilitator):
    # The 2nd Tuesday of the month after next, 18:30 in Berlin.
    today = timezone.now().astimezone(BERLIN).date()
    first_of_month = (today.replace(day=1) + timedelta(days=62)).replace(day=1)
    second_tuesday = first_of_month + timedelta(days=(1 - first_of_month.weekday()) % 7 + 7)
    start = datetime.combine(second_tuesday, time(18, 30), tzinfo=BERLIN)
    meeting = make_meeting(
        group,
        actor=facilitator,
        starts_at=start,
        time_zone="Europe/Berlin",
        recurrence="monthly",
        recurrence_count=8,
    )
    starts = local_starts(meeting)
    assert len(starts) == 8
    for s in starts:
        assert s.weekday() == 1
        assert (s.day - 1) // 7 + 1 == 2, s  # the second Tuesday
        assert (s.hour, s.minute) == (18, 30)
    months = [(s.year, s.month) for s in starts]
    assert len(set(months)) == 8


def test_a_monthly_meeting_started_in_the_fifth_week_falls_on_the_last_weekday(group, facilitator):
    day = timezone.now().astimezone(LONDON).date() + timedelta(days=2)
    while not (day.weekday() == 4 and day.day >= 29):  # a fifth Friday
        day += timedelta(days=1)
    start = datetime.combine(day, time(12), tzinfo=LONDON)
    meeting = make_meeting(
        group, actor=facilitator, starts_at=start, recurrence="monthly", recurrence_count=5
    )
    starts = local_starts(meeting)
    assert len(starts) == 5
    for s in starts:
        assert s.weekday() == 4
        assert (s + timedelta(days=7)).month != s.month  # the last Friday of its month


def test_repeat_until_includes_the_last_day(group, facilitator):
    start = next_local(1, 19)
    meeting = make_meeting(
        group,
        actor=facilitator,
        starts_at=start,
        recurrence="weekly",
        recurrence_until=(start + timedelta(weeks=3)).date(),
    )
    assert meeting.occurrences.count() == 4


def test_an_endless_recurrence_is_materialised_only_up_to_the_cap(group, facilitator):
    weekly = make_meeting(group, actor=facilitator, recurrence="weekly")
    monthly = make_meeting(group, actor=facilitator, title="Monthly", recurrence="monthly")
    long_count = make_meeting(
        group, actor=facilitator, title="Long", recurrence="weekly", recurrence_count=200
    )
    horizon = timezone.now() + HORIZON
    assert weekly.occurrences.count() == OCCURRENCE_CAP
    assert long_count.occurrences.count() == OCCURRENCE_CAP
    assert 11 <= monthly.occurrences.count() <= 13
    assert not Occurrence.objects.filter(starts_at__gt=horizon).exists()


# --- Bad input changes nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"duration_minutes": 0}, "ends_before_start"),
        ({"duration_minutes": -30}, "ends_before_start"),
        ({"duration_minutes": 3}, "bad_duration"),
        ({"duration_minutes": 601}, "bad_duration"),
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown_time_zone"),
        ({"time_zone": ""}, "unknown_time_zone"),
        ({"location": "video"}, "video_without_link"),
        ({"location": "video", "video_url": "call me maybe"}, "bad_video_link"),
        ({"location": "video", "video_url": "javascript:alert(1)"}, "bad_video_link"),
        ({"location": "park"}, "bad_location"),
        ({"recurrence": "daily"}, "bad_recurrence"),
        (
            {"recurrence": "weekly", "recurrence_count": 4, "recurrence_until": date(2099, 1, 1)},
            "count_and_until",
        ),
        ({"recurrence": "weekly", "recurrence_count": 0}, "bad_count"),
        ({"recurrence": "weekly", "recurrence_until": date(2000, 1, 1)}, "until_before_start"),
        ({"title": "   "}, "no_title"),
        ({"starts_at": timezone.now() - timedelta(hours=1)}, "start_in_past"),
        ({"starts_at": timezone.now() + timedelta(days=400)}, "start_too_far"),
        ({"starts_at": datetime(2030, 1, 1, 19)}, "bad_start"),  # noqa: DTZ001 -- naive on purpose
    ],
)
def test_bad_meeting_input_is_refused_kindly_and_changes_nothing(group, facilitator, options, code):
    with pytest.raises(DomainError) as refused:
        make_meeting(group, actor=facilitator, **options)
    assert refused.value.code == code
    assert refused.value.message
    assert not isinstance(refused.value, PermissionDenied)
    assert Meeting.objects.count() == 0
    assert Occurrence.objects.count() == 0


def test_an_unknown_time_zone_is_named_in_the_message(group, facilitator):
    with pytest.raises(DomainError) as refused:
        make_meeting(group, actor=facilitator, time_zone="Europe/Atlantis")
    assert "Europe/Atlantis" in refused.value.message
    assert refused.value.details["field"] == "time_zone"


def test_an_archived_group_gets_no_new_meetings(group, facilitator):
    group.archived_at = timezone.now()
    group.save(update_fields=["archived_at"])
    with pytest.raises(DomainError) as refused:
        make_meeting(group, actor=facilitator)
    assert refused.value.code == "archived"
    assert Meeting.objects.count() == 0


# --- Who may plan ---------------------------------------------------------------------------


def test_a_member_cannot_schedule_edit_move_or_cancel(group, facilitator, member):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    occurrence = meeting.occurrences.first()
    before = list(Occurrence.objects.values_list("pk", "starts_at", "status"))
    with pytest.raises(PermissionDenied):
        make_meeting(group, actor=member)
    with pytest.raises(PermissionDenied):
        services.update_meeting(meeting, actor=member, title="Mine now")
    with pytest.raises(PermissionDenied):
        services.move_occurrence(
            occurrence, actor=member, starts_at=occurrence.starts_at + timedelta(hours=1)
        )
    with pytest.raises(PermissionDenied):
        services.cancel_occurrence(occurrence, actor=member)
    with pytest.raises(PermissionDenied):
        services.cancel_meeting(meeting, actor=member)
    meeting.refresh_from_db()
    assert meeting.title == "Tuesday circle" and meeting.cancelled_at is None
    assert Meeting.objects.count() == 1
    assert list(Occurrence.objects.values_list("pk", "starts_at", "status")) == before


def test_a_facilitator_of_another_group_cannot_act_here(group, facilitator):
    other = make_group(name="Morning circle")
    their_facilitator = make_member(display_name="Alder")
    make_membership(other, their_facilitator, role="facilitator")
    meeting = make_meeting(group, actor=facilitator)
    occurrence = meeting.occurrences.get()
    with pytest.raises(PermissionDenied):
        make_meeting(group, actor=their_facilitator)
    with pytest.raises(PermissionDenied):
        services.update_meeting(meeting, actor=their_facilitator, title="Ours")
    with pytest.raises(PermissionDenied):
        services.cancel_occurrence(occurrence, actor=their_facilitator)
    with pytest.raises(PermissionDenied):
        services.cancel_meeting(meeting, actor=their_facilitator)
    with pytest.raises(PermissionDenied):
        selectors.meeting_occurrences(meeting, user=their_facilitator)
    # ...while in their own group they can.
    assert make_meeting(other, actor=their_facilitator).group == other
    assert Meeting.objects.filter(group=group).count() == 1


def test_a_site_moderator_can_schedule_in_any_group(group, moderator):
    meeting = make_meeting(group, actor=moderator)
    assert meeting.created_by == moderator


def test_a_facilitator_who_stepped_down_can_no_longer_plan(group, facilitator):
    group.memberships.filter(user=facilitator).update(status="left")
    with pytest.raises(PermissionDenied):
        make_meeting(group, actor=facilitator)


# --- RSVPs ----------------------------------------------------------------------------------


def test_a_member_answers_and_can_change_their_answer(group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.rsvp(occurrence, user=member, answer="maybe")
    services.rsvp(occurrence, user=member, answer="going")
    assert list(Rsvp.objects.values_list("user", "answer")) == [(member.pk, "going")]


def test_answering_a_cancelled_occurrence_is_refused_and_changes_nothing(
    group, facilitator, member
):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.rsvp(occurrence, user=member, answer="going")
    services.cancel_occurrence(occurrence, actor=facilitator)
    with pytest.raises(DomainError) as refused:
        services.rsvp(occurrence, user=member, answer="not_going")
    assert refused.value.code == "occurrence_cancelled"
    assert Rsvp.objects.get().answer == "going"


def test_answering_an_occurrence_of_a_cancelled_series_is_refused(group, facilitator, member):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=2)
    services.cancel_meeting(meeting, actor=facilitator)
    with pytest.raises(DomainError):
        services.rsvp(meeting.occurrences.first(), user=member, answer="going")
    assert Rsvp.objects.count() == 0


def test_non_members_cannot_answer(group, facilitator, member, outsider, moderator):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.leave_group(group, user=member)
    for person in (outsider, member, moderator):
        with pytest.raises(PermissionDenied) as refused:
            services.rsvp(occurrence, user=person, answer="going")
        assert refused.value.code == "not_member"
    assert Rsvp.objects.count() == 0


def test_a_facilitator_can_answer_too(group, facilitator):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    assert services.rsvp(occurrence, user=facilitator, answer="going").answer == "going"


def test_an_unknown_answer_or_an_ended_meeting_is_refused(group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    with pytest.raises(DomainError) as refused:
        services.rsvp(occurrence, user=member, answer="perhaps")
    assert refused.value.code == "bad_answer"
    past = timezone.now() - timedelta(hours=3)
    Occurrence.objects.filter(pk=occurrence.pk).update(
        starts_at=past, original_start=past, ends_at=past + timedelta(hours=1)
    )
    with pytest.raises(DomainError) as refused:
        services.rsvp(occurrence, user=member, answer="going")
    assert refused.value.code == "occurrence_over"
    assert Rsvp.objects.count() == 0


# --- Cancelling and moving ------------------------------------------------------------------


def test_cancelling_an_occurrence_stores_it_and_announces_it_only_after_commit(
    group, facilitator, member, events, django_capture_on_commit_callbacks
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    first, second, third = meeting.occurrences.order_by("starts_at")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.cancel_occurrence(second, actor=facilitator)
    assert events == []  # not before the transaction commits
    second.refresh_from_db()
    assert second.status == OccurrenceStatus.CANCELLED
    assert second.changed_at is not None
    for callback in callbacks:
        callback()
    assert events == [
        {"occurrence_id": second.pk, "change": "cancelled", "actor_id": facilitator.pk}
    ]
    first.refresh_from_db()
    third.refresh_from_db()
    assert first.status == third.status == OccurrenceStatus.SCHEDULED


def test_a_refused_change_announces_nothing(
    group, facilitator, events, django_capture_on_commit_callbacks
):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.cancel_occurrence(occurrence, actor=facilitator)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as refused,
    ):
        services.cancel_occurrence(occurrence, actor=facilitator)
    assert refused.value.code == "already_cancelled"
    assert callbacks == []


def test_moving_an_occurrence_keeps_its_identity_length_and_answers(
    group, facilitator, member, events, django_capture_on_commit_callbacks
):
    occurrence = make_meeting(group, actor=facilitator, duration_minutes=75).occurrences.get()
    services.rsvp(occurrence, user=member, answer="going")
    new_start = occurrence.starts_at + timedelta(days=1, hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        moved = services.move_occurrence(occurrence, actor=facilitator, starts_at=new_start)
    assert moved.starts_at == new_start
    assert moved.ends_at == new_start + timedelta(minutes=75)
    assert moved.original_start == occurrence.original_start
    assert Rsvp.objects.get().answer == "going"
    assert events == [
        {"occurrence_id": occurrence.pk, "change": "moved", "actor_id": facilitator.pk}
    ]


def test_moving_into_the_past_or_moving_a_cancelled_meeting_is_refused(
    group, facilitator, events, django_capture_on_commit_callbacks
):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(DomainError) as refused:
            services.move_occurrence(
                occurrence, actor=facilitator, starts_at=timezone.now() - timedelta(days=1)
            )
        assert refused.value.code == "start_in_past"
        services.cancel_occurrence(occurrence, actor=facilitator)
        with pytest.raises(DomainError) as refused:
            services.move_occurrence(
                occurrence, actor=facilitator, starts_at=occurrence.starts_at + timedelta(hours=2)
            )
        assert refused.value.code == "already_cancelled"
    fresh = Occurrence.objects.get()
    assert fresh.starts_at == occurrence.starts_at
    assert [e["change"] for e in events] == ["cancelled"]


def test_a_meeting_that_already_began_cannot_be_moved_or_cancelled(group, facilitator):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    began = timezone.now() - timedelta(minutes=10)
    Occurrence.objects.filter(pk=occurrence.pk).update(
        starts_at=began, original_start=began, ends_at=began + timedelta(hours=1)
    )
    with pytest.raises(DomainError) as refused:
        services.cancel_occurrence(occurrence, actor=facilitator)
    assert refused.value.code == "already_started"
    assert Occurrence.objects.get().status == OccurrenceStatus.SCHEDULED


def test_cancelling_a_series_cancels_future_occurrences_and_announces_each(
    group, facilitator, events, django_capture_on_commit_callbacks
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=4)
    past_one = meeting.occurrences.order_by("starts_at").first()
    past = timezone.now() - timedelta(days=7)
    Occurrence.objects.filter(pk=past_one.pk).update(
        starts_at=past, original_start=past, ends_at=past + timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_meeting(meeting, actor=facilitator)
    meeting.refresh_from_db()
    assert meeting.cancelled_at is not None
    statuses = dict(meeting.occurrences.values_list("pk", "status"))
    assert statuses.pop(past_one.pk) == OccurrenceStatus.SCHEDULED  # history stays as it was
    assert set(statuses.values()) == {OccurrenceStatus.CANCELLED}
    assert sorted(e["occurrence_id"] for e in events) == sorted(statuses)
    assert {e["change"] for e in events} == {"cancelled"}
    with pytest.raises(DomainError):
        services.cancel_meeting(meeting, actor=facilitator)
    with pytest.raises(DomainError) as refused:
        services.update_meeting(meeting, actor=facilitator, title="Back again")
    assert refused.value.code == "meeting_cancelled"


# --- Editing a schedule ---------------------------------------------------------------------


def test_editing_only_the_title_keeps_every_occurrence(group, facilitator, member):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=5)
    before = list(meeting.occurrences.values_list("pk", "starts_at", "ends_at"))
    services.update_meeting(meeting, actor=facilitator, title="Tuesday evening circle")
    meeting.refresh_from_db()
    assert meeting.title == "Tuesday evening circle"
    assert list(meeting.occurrences.values_list("pk", "starts_at", "ends_at")) == before


def test_editing_the_schedule_regenerates_future_occurrences_and_keeps_answers_that_still_fit(
    group, facilitator, member, events, django_capture_on_commit_callbacks
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=6)
    occ = list(meeting.occurrences.order_by("starts_at"))
    # One sitting already happened; it must stay exactly as it is.
    past = timezone.now() - timedelta(days=7)
    Occurrence.objects.filter(pk=occ[0].pk).update(
        starts_at=past, original_start=past, ends_at=past + timedelta(hours=1)
    )
    past_row = Occurrence.objects.get(pk=occ[0].pk)
    services.rsvp(occ[2], user=member, answer="going")  # stays: week 2 is on the new schedule
    services.rsvp(occ[3], user=member, answer="maybe")  # week 3 is dropped: cancelled, kept
    moved_to = occ[5].starts_at + timedelta(hours=2)
    services.move_occurrence(occ[5], actor=facilitator, starts_at=moved_to)

    with django_capture_on_commit_callbacks(execute=True):
        services.update_meeting(
            meeting,
            actor=facilitator,
            starts_at=occ[2].starts_at,
            recurrence="biweekly",
            recurrence_count=3,
            duration_minutes=90,
        )
    rows = {o.pk: o for o in Occurrence.objects.filter(meeting=meeting)}
    assert rows[past_row.pk].starts_at == past_row.starts_at
    assert rows[past_row.pk].ends_at == past_row.ends_at  # untouched, even the length
    assert rows[occ[2].pk].status == OccurrenceStatus.SCHEDULED
    assert rows[occ[2].pk].ends_at == occ[2].starts_at + timedelta(minutes=90)
    assert Rsvp.objects.get(occurrence=occ[2]).answer == "going"
    assert rows[occ[3].pk].status == OccurrenceStatus.CANCELLED
    assert Rsvp.objects.filter(occurrence=occ[3]).exists()
    assert occ[1].pk not in rows  # nobody had answered; it just goes
    assert rows[occ[4].pk].status == OccurrenceStatus.SCHEDULED  # week 4 = 2nd fortnight
    assert rows[occ[5].pk].starts_at == moved_to  # moved by hand: stays put
    regenerated = {
        o.original_start
        for o in rows.values()
        if o.status == "scheduled" and o.pk not in (past_row.pk, occ[5].pk)
    }
    fortnight_later = occ[4].starts_at.astimezone(LONDON) + timedelta(weeks=2)  # wall clock
    assert regenerated == {occ[2].starts_at, occ[4].starts_at, fortnight_later}
    assert [e for e in events if e["change"] == "cancelled"] == [
        {"occurrence_id": occ[3].pk, "change": "cancelled", "actor_id": facilitator.pk}
    ]


def test_changing_the_time_of_day_moves_future_sittings_to_the_new_local_time(group, facilitator):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=10)
    start = meeting.starts_at.astimezone(LONDON).replace(hour=20)
    services.update_meeting(meeting, actor=facilitator, starts_at=start)
    starts = local_starts(meeting)
    assert len(starts) == 10
    assert {(s.weekday(), s.hour) for s in starts} == {(1, 20)}


def _series_two_weeks_in(group, facilitator):
    """A weekly series of five at 19:00 London whose first two sittings have begun: scheduled
    to start next Tuesday, then moved back two weeks (three if next Tuesday is over a week
    away), with its history."""
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=5)
    back = timedelta(weeks=2 if meeting.starts_at - timezone.now() < timedelta(weeks=1) else 3)
    Meeting.objects.filter(pk=meeting.pk).update(starts_at=F("starts_at") - back)
    Occurrence.objects.filter(meeting=meeting).update(
        starts_at=F("starts_at") - back,
        original_start=F("original_start") - back,
        ends_at=F("ends_at") - back,
    )
    meeting.refresh_from_db()
    history = list(
        Occurrence.objects.filter(starts_at__lt=timezone.now()).values_list(
            "pk", "starts_at", "ends_at"
        )
    )
    assert len(history) == 2
    return meeting, history


# A Thursday noon: no sitting of a Tuesday series is near, whichever hour it moves to.
@time_machine.travel(datetime(2026, 11, 19, 12, 0, tzinfo=LONDON), tick=False)
def test_a_series_that_already_began_can_change_its_time_and_keeps_its_history(group, facilitator):
    meeting, history = _series_two_weeks_in(group, facilitator)
    now = timezone.now()
    first_start = meeting.starts_at.astimezone(LONDON).replace(hour=20)
    assert first_start < now
    services.update_meeting(meeting, actor=facilitator, starts_at=first_start)
    assert (
        list(Occurrence.objects.filter(starts_at__lt=now).values_list("pk", "starts_at", "ends_at"))
        == history
    )
    future = [o.starts_at.astimezone(LONDON) for o in meeting.occurrences.filter(starts_at__gt=now)]
    assert len(future) == 3  # five in all, counted from the first start
    assert {(s.weekday(), s.hour) for s in future} == {(1, 20)}


# A Tuesday at 19:30: tonight's 19:00 sitting is under way when the series moves to 20:00.
@time_machine.travel(datetime(2026, 11, 24, 19, 30, tzinfo=LONDON), tick=False)
def test_moving_a_series_during_its_sitting_adds_no_second_sitting_that_evening(group, facilitator):
    meeting, history = _series_two_weeks_in(group, facilitator)
    now = timezone.now()
    tonight = Occurrence.objects.get(meeting=meeting, starts_at__lte=now, ends_at__gt=now)
    services.update_meeting(
        meeting, actor=facilitator, starts_at=meeting.starts_at.astimezone(LONDON).replace(hour=20)
    )
    assert (
        list(Occurrence.objects.filter(starts_at__lt=now).values_list("pk", "starts_at", "ends_at"))
        == history
    )
    future = [o.starts_at.astimezone(LONDON) for o in meeting.occurrences.filter(starts_at__gt=now)]
    assert [s.date() for s in future] == [date(2026, 12, 1), date(2026, 12, 8), date(2026, 12, 15)]
    assert {s.hour for s in future} == {20}
    assert meeting.occurrences.count() == 5  # the count still holds, tonight's sitting in it
    tonight.refresh_from_db()
    assert (tonight.starts_at.astimezone(LONDON).hour, tonight.status) == (19, "scheduled")
    # The window-filler (Celery beat) agrees: nothing to add tonight either.
    assert extend_all_occurrences(now=now) == 0


def test_bad_input_to_an_edit_changes_nothing(group, facilitator):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=4)
    before = list(meeting.occurrences.values_list("pk", "starts_at", "ends_at", "status"))
    for changes in (
        {"duration_minutes": 0},
        {"time_zone": "Nowhere/Special"},
        {"location": "video", "video_url": ""},
        {"starts_at": timezone.now() - timedelta(days=1)},
        {"recurrence_until": date(2001, 1, 1)},
    ):
        with pytest.raises(DomainError):
            services.update_meeting(meeting, actor=facilitator, title="Changed", **changes)
    fresh = Meeting.objects.get(pk=meeting.pk)
    assert (fresh.title, fresh.duration_minutes, fresh.location) == ("Tuesday circle", 60, "room")
    assert list(meeting.occurrences.values_list("pk", "starts_at", "ends_at", "status")) == before


def test_a_video_meeting_keeps_its_link_and_a_room_meeting_drops_a_stray_one(group, facilitator):
    video = make_meeting(
        group, actor=facilitator, location="video", video_url="https://video.example.test/circle"
    )
    room = make_meeting(group, actor=facilitator, video_url="https://video.example.test/x")
    assert video.video_url == "https://video.example.test/circle"
    assert room.video_url == ""


def test_editing_an_archived_groups_meeting_is_refused(group, facilitator):
    meeting = make_meeting(group, actor=facilitator)
    group.archived_at = timezone.now()
    group.save(update_fields=["archived_at"])
    with pytest.raises(DomainError) as refused:
        services.update_meeting(meeting, actor=facilitator, title="New")
    assert refused.value.code == "archived"


# --- Reading --------------------------------------------------------------------------------


def test_next_occurrences_gives_each_groups_next_scheduled_sitting_in_one_query(
    group, facilitator, django_assert_max_num_queries
):
    other = make_group()
    empty = make_group()
    weekly = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    first, second, _ = weekly.occurrences.order_by("starts_at")
    services.cancel_occurrence(first, actor=facilitator)
    facilitator_b = make_member()
    make_membership(other, facilitator_b, role="facilitator")
    later = make_meeting(other, actor=facilitator_b, starts_at=next_local(4, 9, weeks=2))
    sooner = make_meeting(other, actor=facilitator_b, starts_at=next_local(4, 9, weeks=1))
    with django_assert_max_num_queries(1):
        result = selectors.next_occurrences([group, other, empty])
        titles = {pk: o.meeting.title for pk, o in result.items()}
    assert set(result) == {group.pk, other.pk}
    assert result[group.pk].pk == second.pk
    assert result[other.pk].meeting_id == sooner.pk != later.pk
    assert titles[group.pk] == "Tuesday circle"
    assert selectors.next_occurrences([]) == {}


def test_upcoming_occurrences_show_a_member_only_their_own_answer(group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.rsvp(occurrence, user=member, answer="maybe")
    (seen,) = selectors.upcoming_occurrences(group, user=member)
    assert seen.my_rsvp == "maybe"
    assert seen.can_rsvp is True
    assert seen.rsvp_counts is None and seen.coming is None


def test_facilitators_see_counts_and_who_is_coming_by_display_name(group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    fern = make_member(display_name="Fern")
    make_membership(group, fern)
    services.rsvp(occurrence, user=member, answer="going")
    services.rsvp(occurrence, user=fern, answer="not_going")
    services.rsvp(occurrence, user=facilitator, answer="maybe")
    (seen,) = selectors.upcoming_occurrences(group, user=facilitator)
    assert seen.rsvp_counts == {"going": 1, "maybe": 1, "not_going": 1}
    assert seen.coming == [("Maple", "maybe"), ("Willow", "going")]
    assert seen.my_rsvp == "maybe"


def test_people_who_left_the_group_no_longer_count_as_coming(group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.rsvp(occurrence, user=member, answer="going")
    services.leave_group(group, user=member)
    (seen,) = selectors.upcoming_occurrences(group, user=facilitator)
    assert seen.rsvp_counts == {"going": 0, "maybe": 0, "not_going": 0}
    assert seen.coming == []


def test_upcoming_occurrences_are_for_members_and_managers_only(
    group, facilitator, member, outsider, moderator
):
    make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=8)
    assert len(selectors.upcoming_occurrences(group, user=member, limit=5)) == 5
    (first,) = selectors.upcoming_occurrences(group, user=moderator, limit=1)
    assert first.can_rsvp is False  # a moderator who isn't a member sees but doesn't answer
    with pytest.raises(PermissionDenied):
        selectors.upcoming_occurrences(group, user=outsider)


# --- The occurrence window and its task -------------------------------------------------------


def test_the_extend_task_refills_the_window_and_is_safe_to_run_twice(group, facilitator):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly")
    # As if the window had been filled months ago: the last ten sittings aren't there yet.
    last_ten = meeting.occurrences.order_by("-starts_at").values_list("pk", flat=True)[:10]
    Occurrence.objects.filter(pk__in=list(last_ten)).delete()
    assert task_extend_occurrences() == 10
    assert task_extend_occurrences() == 0
    assert task_extend_occurrences(meeting_id=meeting.pk) == 0
    assert meeting.occurrences.count() == OCCURRENCE_CAP


def test_extending_later_adds_the_sittings_that_came_into_range(group, facilitator, member):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly")
    first = meeting.occurrences.order_by("starts_at").first()
    services.rsvp(first, user=member, answer="going")
    later = timezone.now() + timedelta(days=30)
    added = extend_all_occurrences(now=later)
    assert 4 <= added <= 5
    assert extend_all_occurrences(now=later) == 0
    assert Rsvp.objects.get().occurrence_id == first.pk  # nothing existing was touched
    local = {s.hour for s in local_starts(meeting)}
    assert local == {19}


def test_the_extend_task_leaves_cancelled_and_finite_meetings_alone(group, facilitator):
    cancelled = make_meeting(group, actor=facilitator, recurrence="weekly")
    services.cancel_meeting(cancelled, actor=facilitator)
    Occurrence.objects.filter(meeting=cancelled).delete()
    finite = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    assert task_extend_occurrences() == 0
    assert task_extend_occurrences(meeting_id=cancelled.pk) == 0
    assert finite.occurrences.count() == 3
    assert task_extend_occurrences(meeting_id=987654) == 0  # gone: logged, not an error


def test_celery_beat_installs_the_extend_task_in_its_database_schedule(transactional_db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from community.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["extend-meeting-occurrences"]
    assert entry["task"] == task_extend_occurrences.name
    DatabaseScheduler(app=app)  # what `celery beat` does at start-up
    periodic = PeriodicTask.objects.get(name="extend-meeting-occurrences")
    assert periodic.task == "groups.tasks.task_extend_occurrences"
    assert periodic.enabled and periodic.interval is not None


# --- Calendar feeds and the demo --------------------------------------------------------------


def test_a_calendar_feed_is_made_once_and_revoking_replaces_its_token(member):
    feed = services.calendar_feed_for(member)
    assert services.calendar_feed_for(member).token == feed.token
    renewed = services.revoke_calendar_feed(member)
    assert renewed.pk == feed.pk
    assert renewed.token != feed.token
    assert selectors.calendar_feed_for_token(renewed.token).user == member
    with pytest.raises(DomainError):
        selectors.calendar_feed_for_token(feed.token)


def test_the_demo_group_gets_eight_weekly_tuesday_evenings_once(group, facilitator):
    meeting = services.create_demo_meetings(group, actor=facilitator)
    again = services.create_demo_meetings(group, actor=facilitator)
    assert again.pk == meeting.pk
    starts = local_starts(meeting, LONDON)
    assert len(starts) == 8
    assert {(s.weekday(), s.hour) for s in starts} == {(1, 19)}
