"""Meeting pages through the Django test client: planning, RSVPs, .ics files, private feeds."""

import zoneinfo
from datetime import UTC, timedelta

import icalendar
import pytest
from django.urls import reverse

from groups import services
from groups.models import Group, Meeting, Occurrence, OccurrenceStatus, Rsvp
from tests.factories import make_group, make_meeting, make_member, make_membership, next_local

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")


def meeting_post(**overrides):
    start = next_local(1, 19)
    data = {
        "title": "Tuesday circle",
        "date": start.date().isoformat(),
        "start_time": "19:00",
        "time_zone": "Europe/London",
        "duration_minutes": "60",
        "recurrence": "weekly",
        "recurrence_count": "4",
        "recurrence_until": "",
        "location": "room",
        "video_url": "",
        "facilitator_note": "Bring a cup of tea.",
    }
    data.update(overrides)
    return data


def parse(response) -> icalendar.Calendar:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(response.content)


@pytest.fixture
def other_facilitator(db):
    other = make_group(name="Morning circle", slug="morning-circle")
    person = make_member(display_name="Alder", email="alder@example.test")
    make_membership(other, person, role="facilitator")
    return person


# --- Planning -------------------------------------------------------------------------------


def test_a_facilitator_schedules_a_meeting_with_the_form(client, group, facilitator):
    client.force_login(facilitator)
    url = reverse("groups:meeting_create", kwargs={"slug": group.slug})
    assert client.get(url).status_code == 200
    response = client.post(url, meeting_post())
    meeting = Meeting.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "groups:meeting_detail", kwargs={"slug": group.slug, "pk": meeting.pk}
    )
    assert meeting.starts_at.astimezone(LONDON).hour == 19
    assert meeting.occurrences.count() == 4
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Going: 0" in page.content.decode()


def test_the_form_explains_bad_input_kindly_and_nothing_is_created(client, group, facilitator):
    client.force_login(facilitator)
    url = reverse("groups:meeting_create", kwargs={"slug": group.slug})
    cases = [
        ({"duration_minutes": "0"}, "A meeting needs to end after it starts"),
        ({"time_zone": "Mars/Olympus_Mons"}, "We don&#x27;t recognise the time zone"),
        ({"location": "video"}, "A video meeting needs its link"),
        ({"recurrence_until": "2000-01-01", "recurrence_count": ""}, "before the first meeting"),
        ({"recurrence_until": "2099-01-01"}, "either a number of meetings or an end date"),
    ]
    for overrides, message in cases:
        response = client.post(url, meeting_post(**overrides))
        assert response.status_code == 200, overrides
        assert message in response.content.decode(), overrides
    assert Meeting.objects.count() == 0
    assert Occurrence.objects.count() == 0


def test_members_and_other_groups_facilitators_cannot_plan_here(
    client, group, facilitator, member, other_facilitator
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=2)
    occurrence = meeting.occurrences.first()
    slug = group.slug
    for person in (member, other_facilitator):
        client.force_login(person)
        for name, kwargs in [
            ("groups:meeting_create", {"slug": slug}),
            ("groups:meeting_edit", {"slug": slug, "pk": meeting.pk}),
            ("groups:meeting_detail", {"slug": slug, "pk": meeting.pk}),
            ("groups:meeting_cancel", {"slug": slug, "pk": meeting.pk}),
            ("groups:occurrence_cancel", {"slug": slug, "pk": occurrence.pk}),
            ("groups:occurrence_move", {"slug": slug, "pk": occurrence.pk}),
        ]:
            url = reverse(name, kwargs=kwargs)
            assert client.get(url).status_code == 403, (person, name)
            posted = client.post(url, meeting_post(title="Taken over")).status_code
            assert posted == (405 if name == "groups:meeting_detail" else 403), (person, name)
    assert Meeting.objects.count() == 1
    meeting.refresh_from_db()
    assert meeting.title == "Tuesday circle" and meeting.cancelled_at is None
    assert not Occurrence.objects.filter(status=OccurrenceStatus.CANCELLED).exists()


def test_a_meeting_of_another_group_is_not_found_under_this_groups_address(
    client, group, facilitator, other_facilitator
):
    theirs = make_meeting(
        Group.objects.get(slug="morning-circle"),
        actor=other_facilitator,
    )
    client.force_login(facilitator)
    url = reverse("groups:meeting_edit", kwargs={"slug": group.slug, "pk": theirs.pk})
    assert client.get(url).status_code == 404


def test_a_facilitator_edits_moves_and_cancels_through_the_pages(
    client, group, facilitator, member
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    first, second, third = meeting.occurrences.order_by("starts_at")
    services.rsvp(first, user=member, answer="going")
    client.force_login(facilitator)
    slug = group.slug

    edit = reverse("groups:meeting_edit", kwargs={"slug": slug, "pk": meeting.pk})
    assert 'value="19:00"' in client.get(edit).content.decode()
    local = first.starts_at.astimezone(LONDON)
    response = client.post(
        edit,
        meeting_post(title="Tuesday evening", date=local.date().isoformat(), recurrence_count="3"),
    )
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.title == "Tuesday evening"
    assert Rsvp.objects.get().occurrence_id == first.pk  # same schedule: same rows

    move = reverse("groups:occurrence_move", kwargs={"slug": slug, "pk": second.pk})
    assert client.get(move).status_code == 200
    new_local = second.starts_at.astimezone(LONDON) + timedelta(days=1)
    response = client.post(move, {"date": new_local.date().isoformat(), "start_time": "18:00"})
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.starts_at.astimezone(LONDON).hour == 18
    assert second.starts_at.astimezone(LONDON).date() == new_local.date()

    past = client.post(move, {"date": "2001-01-01", "start_time": "18:00"})
    assert past.status_code == 200
    assert "already passed" in past.content.decode()

    cancel_one = reverse("groups:occurrence_cancel", kwargs={"slug": slug, "pk": third.pk})
    assert client.get(cancel_one).status_code == 200
    assert client.post(cancel_one).status_code == 302
    third.refresh_from_db()
    assert third.status == OccurrenceStatus.CANCELLED

    cancel_all = reverse("groups:meeting_cancel", kwargs={"slug": slug, "pk": meeting.pk})
    assert client.get(cancel_all).status_code == 200
    assert client.post(cancel_all).status_code == 302
    meeting.refresh_from_db()
    assert meeting.cancelled_at is not None
    assert set(meeting.occurrences.values_list("status", flat=True)) == {"cancelled"}


# --- Members --------------------------------------------------------------------------------


def test_members_see_meetings_in_their_own_time_zone_and_answer(client, group, facilitator, member):
    meeting = make_meeting(group, actor=facilitator)  # 19:00 in London
    occurrence = meeting.occurrences.get()
    client.force_login(member)  # Willow lives in Berlin
    url = reverse("groups:meetings", kwargs={"slug": group.slug})
    body = client.get(url).content.decode()
    berlin = occurrence.starts_at.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert berlin.strftime("%H:%M") == "20:00"
    assert "20:00" in body
    assert "Europe/Berlin" in body
    assert "Going: " not in body  # counts are for facilitators

    rsvp = reverse("groups:rsvp", kwargs={"slug": group.slug, "pk": occurrence.pk})
    response = client.post(rsvp, {"answer": "going", "next": url})
    assert response.status_code == 302 and response["Location"] == url
    assert Rsvp.objects.get(user=member).answer == "going"
    assert "Your answer: going." in client.get(url).content.decode()

    response = client.post(rsvp, {"answer": "maybe", "next": "https://elsewhere.example.test/"})
    assert response["Location"] == url  # never sent off-site
    assert Rsvp.objects.get(user=member).answer == "maybe"


def test_facilitators_see_who_is_coming_and_members_do_not(client, group, facilitator, member):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.rsvp(occurrence, user=member, answer="going")
    fern = make_member(display_name="Fern", email="fern@example.test")
    make_membership(group, fern)
    url = reverse("groups:meetings", kwargs={"slug": group.slug})

    client.force_login(facilitator)
    body = client.get(url).content.decode()
    assert "Going: 1" in body and "Willow" in body
    assert member.email not in body

    client.force_login(fern)
    body = client.get(url).content.decode()
    assert "Willow" not in body
    assert "Going: 1" not in body


def test_outsiders_cannot_see_or_answer(client, group, facilitator, outsider):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    client.force_login(outsider)
    assert client.get(reverse("groups:meetings", kwargs={"slug": group.slug})).status_code == 403
    rsvp = reverse("groups:rsvp", kwargs={"slug": group.slug, "pk": occurrence.pk})
    assert client.post(rsvp, {"answer": "going"}).status_code == 403
    assert Rsvp.objects.count() == 0


def test_answering_a_cancelled_meeting_explains_why_and_changes_nothing(
    client, group, facilitator, member
):
    occurrence = make_meeting(group, actor=facilitator).occurrences.get()
    services.cancel_occurrence(occurrence, actor=facilitator)
    client.force_login(member)
    page = client.get(reverse("groups:meetings", kwargs={"slug": group.slug})).content.decode()
    assert "Cancelled" in page
    assert 'value="going"' not in page  # no answer buttons for a cancelled date
    response = client.post(
        reverse("groups:rsvp", kwargs={"slug": group.slug, "pk": occurrence.pk}),
        {"answer": "going"},
    )
    assert "was cancelled" in response.content.decode()
    assert Rsvp.objects.count() == 0


def test_signed_out_visitors_are_asked_to_sign_in(client, group, facilitator):
    make_meeting(group, actor=facilitator)
    for url in [
        reverse("groups:meetings", kwargs={"slug": group.slug}),
        reverse("groups:my_calendar"),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


# --- The .ics file --------------------------------------------------------------------------


def test_the_meeting_ics_has_one_event_per_date_in_the_meetings_zone(
    client, group, facilitator, member
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    first, second, _third = meeting.occurrences.order_by("starts_at")
    services.rsvp(first, user=member, answer="going")
    services.cancel_occurrence(second, actor=facilitator)
    client.force_login(member)
    response = client.get(
        reverse("groups:meeting_ics", kwargs={"slug": group.slug, "pk": meeting.pk})
    )
    cal = parse(response)
    assert "attachment" in response["Content-Disposition"]
    events = sorted(cal.events, key=lambda e: e.start)
    assert len(events) == 3
    for event, occurrence in zip(events, meeting.occurrences.order_by("starts_at"), strict=True):
        assert event.start == occurrence.starts_at
        assert event.end == occurrence.ends_at
        assert str(event.start.tzinfo) == "Europe/London"
        assert event.start.hour == 19
        assert event["LOCATION"].startswith("http://testserver/groups/evening-circle/")
        assert str(event["SUMMARY"]) == "Tuesday circle · Evening circle"
    assert [str(e["STATUS"]) for e in events] == ["CONFIRMED", "CANCELLED", "CONFIRMED"]
    assert [tz.tz_name for tz in cal.timezones] == ["Europe/London"]
    text = response.content.decode()
    for private in ("Willow", "Maple", member.email, facilitator.email, "ATTENDEE"):
        assert private not in text


def test_the_ics_keeps_19_00_london_across_the_clock_changes_and_uids_are_stable(
    client, group, facilitator, member
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly")
    client.force_login(member)
    url = reverse("groups:meeting_ics", kwargs={"slug": group.slug, "pk": meeting.pk})
    events = parse(client.get(url)).events
    assert len(events) == 52
    assert {(e.start.weekday(), e.start.hour) for e in events} == {(1, 19)}
    assert {e.start.astimezone(UTC).hour for e in events} == {18, 19}
    again = parse(client.get(url, HTTP_HOST="127.0.0.1")).events
    assert {str(e["UID"]) for e in again} == {str(e["UID"]) for e in events}


def test_a_video_meetings_ics_points_to_the_video_link(client, group, facilitator, member):
    meeting = make_meeting(
        group,
        actor=facilitator,
        location="video",
        video_url="https://video.example.test/evening",
        facilitator_note="We start with a quiet minute.",
    )
    client.force_login(member)
    cal = parse(
        client.get(reverse("groups:meeting_ics", kwargs={"slug": group.slug, "pk": meeting.pk}))
    )
    (event,) = cal.events
    assert str(event["LOCATION"]) == "https://video.example.test/evening"
    assert "quiet minute" not in cal.to_ical().decode()  # the note stays on the site


def test_outsiders_get_no_ics(client, group, facilitator, outsider):
    meeting = make_meeting(group, actor=facilitator)
    client.force_login(outsider)
    url = reverse("groups:meeting_ics", kwargs={"slug": group.slug, "pk": meeting.pk})
    assert client.get(url).status_code == 403


# --- The private feed -----------------------------------------------------------------------


def test_the_private_feed_lists_the_members_groups_only_and_revoking_stops_the_old_address(
    client, group, facilitator, member, other_facilitator
):
    ours = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=2)
    other = make_group(name="Morning circle two")
    other_person = make_member()
    make_membership(other, other_person, role="facilitator")
    make_meeting(other, actor=other_person, title="Not Willow's meeting")

    client.force_login(member)
    page = client.get(reverse("groups:my_calendar"))
    assert page.status_code == 200
    feed = services.calendar_feed_for(member)
    old_url = reverse("groups:calendar_feed", kwargs={"token": feed.token})
    assert f"http://testserver{old_url}" in page.content.decode()

    client.logout()  # calendar apps fetch the feed without signing in
    response = client.get(old_url)
    cal = parse(response)
    assert "private" in response["Cache-Control"]
    summaries = {str(e["SUMMARY"]) for e in cal.events}
    assert summaries == {"Tuesday circle · Evening circle"}
    assert len(cal.events) == ours.occurrences.count() == 2
    assert "Willow" not in response.content.decode()

    client.force_login(member)
    response = client.post(reverse("groups:my_calendar_revoke"))
    assert response.status_code == 302
    client.logout()
    assert client.get(old_url).status_code == 404
    new_token = services.calendar_feed_for(member).token
    assert new_token != feed.token
    assert (
        client.get(reverse("groups:calendar_feed", kwargs={"token": new_token})).status_code == 200
    )
    assert client.get("/calendar/not-a-real-token.ics").status_code == 404


def test_the_feed_marks_cancelled_dates_and_drops_groups_the_member_left(
    client, group, facilitator, member
):
    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=2)
    services.cancel_occurrence(meeting.occurrences.order_by("starts_at").first(), actor=facilitator)
    url = reverse(
        "groups:calendar_feed", kwargs={"token": services.calendar_feed_for(member).token}
    )
    statuses = sorted(str(e["STATUS"]) for e in parse(client.get(url)).events)
    assert statuses == ["CANCELLED", "CONFIRMED"]
    services.leave_group(group, user=member)
    assert parse(client.get(url)).events == []


def test_revoking_needs_a_post(client, member):
    client.force_login(member)
    assert client.get(reverse("groups:my_calendar_revoke")).status_code == 405
