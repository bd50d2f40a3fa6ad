"""Reporting a message from the room: the report view (the room's script posts to it)."""

import pytest
from django.urls import reverse

from moderation.models import QueueItem, Report
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import ORDINARY, post

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def report_url(message):
    return reverse("moderation:report_message", args=[message.group.slug, message.seq])


def test_a_member_reports_a_message_once_and_it_enters_the_queue(
    client, group, member, facilitator
):
    message = post(group, facilitator, ORDINARY)
    client.force_login(member)
    data = {"category": "harassment", "details": "It felt pointed at me."}

    first = client.post(report_url(message), data, **JSON)
    again = client.post(report_url(message), data, **JSON)

    assert first.status_code == again.status_code == 200
    assert "won't know it was you" in first.json()["message"]
    report = Report.objects.get()
    assert (report.reporter, report.category) == (member, "harassment")
    assert QueueItem.objects.filter(kind="report", report=report).count() == 1


def test_the_room_shows_a_labelled_report_control_on_others_messages_only(
    client, group, member, facilitator
):
    post(group, facilitator, ORDINARY)
    post(group, member, "My own words.")
    client.force_login(member)
    page = client.get(reverse("groups:room", args=[group.slug])).content.decode()
    assert page.count("Report this message") == 2  # Maple's message, and the script's template
    assert 'for="report-category-1"' in page and 'id="report-category-1"' in page
    assert 'id="report-category-2"' not in page


def test_a_report_without_a_category_or_of_an_unseen_message_is_refused_and_changes_nothing(
    client, group, member, facilitator
):
    message = post(group, facilitator, ORDINARY)
    other = make_group(name="Morning circle")
    rowan = make_member(display_name="Rowan")
    make_membership(other, rowan)
    elsewhere = post(other, rowan, ORDINARY)
    client.force_login(member)

    no_category = client.post(report_url(message), {"category": ""}, **JSON)
    assert no_category.status_code == 400
    assert "Please choose what kind of problem" in no_category.json()["message"]
    unseen = client.post(report_url(elsewhere), {"category": "spam"}, **JSON)
    assert unseen.status_code == 404
    assert unseen.json()["message"] == "We couldn't find that message."
    own = client.post(report_url(post(group, member, "Mine.")), {"category": "spam"}, **JSON)
    assert own.status_code == 400
    assert not Report.objects.exists()
    assert not QueueItem.objects.filter(kind="report").exists()
