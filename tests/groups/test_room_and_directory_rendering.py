"""The room page and the directory, drawn without per-item template work: the same markup as
the templates draw, and a number of queries that doesn't grow with messages or groups."""

import re
import uuid
from zoneinfo import ZoneInfo

from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from groups import selectors, services
from groups.services.checkins import record_check_in
from tests.factories import make_group, make_meeting, make_member, make_membership, next_local

_TOKEN = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*"')


def without_tokens(html: str) -> str:
    """Each form's CSRF token differs by its mask alone; compare everything else."""
    return _TOKEN.sub(r'\1"', html)


def post(group, user, body, **extra):
    return services.post_message(group, author=user, client_id=uuid.uuid4(), body=body, **extra)


def test_each_messages_report_form_and_person_menu_are_the_templates_own_with_its_seq_and_name(
    client, group, facilitator
):
    name = '<b>&amp;"{name}"$&918273645546372819'  # markup, room.js's marks, the seq mark
    author = make_member(display_name=name)
    make_membership(group, author)
    seqs = [post(group, author, f"Message {n}").message.seq for n in range(3)]
    client.force_login(facilitator)
    html = without_tokens(client.get("/groups/evening-circle/room/").content.decode())
    for seq in seqs:
        context = {"slug": group.slug, "seq": seq, "name": author.display_name, "csrf_token": "t"}
        report = render_to_string("groups/room/report.html", context)
        person = render_to_string("groups/room/person_menu.html", context)
        assert without_tokens(report + "\n      " + person) in html
    assert "<b>&amp;" not in html  # the name is escaped, as the template escapes it


def test_the_room_page_reads_as_many_rows_for_many_messages_as_for_few(
    client, group, facilitator, member
):
    def queries_for_room_page():
        client.force_login(facilitator)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/groups/evening-circle/room/").status_code == 200
        return len(queries)

    authors = [member, *(make_member() for _ in range(2))]
    for author in authors[1:]:
        make_membership(group, author)

    def add_messages(count):  # a few each: posting is rate-limited per member
        for n in range(count):
            author = authors[n % len(authors)]
            seq = post(group, author, f"Words {n}", content_warning="grief" if n % 3 else "")
            services.toggle_reaction(group, user=facilitator, seq=seq.message.seq, reaction="heart")
        record_check_in(member, group=group, presence=3, feelings=[], audience="group")

    add_messages(2)
    queries_for_room_page()  # the first visit also records the session's activity
    few = queries_for_room_page()
    add_messages(8)
    assert queries_for_room_page() == few


def test_the_directory_reads_as_many_rows_for_many_groups_as_for_few(client, group, facilitator):
    def queries_for_directory():
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/groups/").status_code == 200
        return len(queries)

    def add_groups(count):
        for _ in range(count):
            other = make_group()
            host = make_member()
            make_membership(other, host, role="facilitator")
            make_meeting(other, actor=host)

    client.force_login(facilitator)
    make_meeting(group, actor=facilitator)
    queries_for_directory()  # the first visit also records the session's activity
    few = queries_for_directory()
    add_groups(6)
    assert queries_for_directory() == few


def test_a_directory_card_shows_its_topic_size_next_meeting_on_the_members_clock_and_link(
    client, group, facilitator, member
):
    starts = next_local(1, 19, zone="Europe/London")
    make_meeting(group, actor=facilitator, starts_at=starts, time_zone="Europe/London")
    client.force_login(member)  # whose clock is Europe/Berlin's
    html = client.get("/groups/").content.decode()
    shown = starts.astimezone(ZoneInfo("Europe/Berlin"))
    assert '<h3><a href="/groups/evening-circle/">Evening circle</a></h3>' in html
    assert "<dt>Topic</dt><dd>Relational trauma</dd>" in html
    assert "<dt>Size</dt><dd>2 of 12</dd>" in html
    assert f'<time datetime="{shown.isoformat()}">' in html
    assert f"{shown:%H:%M}</time>" in html
    assert "<dt>How to join</dt><dd>Open</dd>" in html


def test_next_meeting_times_are_the_starts_of_each_groups_next_scheduled_sitting(
    group, facilitator, django_assert_max_num_queries
):
    other = make_group()
    empty = make_group()
    weekly = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=3)
    first, second, _ = weekly.occurrences.order_by("starts_at")
    services.cancel_occurrence(first, actor=facilitator)
    host = make_member()
    make_membership(other, host, role="facilitator")
    make_meeting(other, actor=host, starts_at=next_local(4, 9, weeks=2))
    sooner = make_meeting(other, actor=host, starts_at=next_local(4, 9, weeks=1))
    with django_assert_max_num_queries(1):
        times = selectors.next_meeting_times([group, other, empty])
    assert times == {group.pk: second.starts_at, other.pk: sooner.occurrences.get().starts_at}
    assert times == {
        pk: o.starts_at for pk, o in selectors.next_occurrences([group, other, empty]).items()
    }
    assert selectors.next_meeting_times([]) == {}
