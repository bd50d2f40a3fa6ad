"""The room page and its history pages: server-rendered, escaped, paginated, members only."""

import json
import re
import uuid

from groups import services
from groups.models import Message
from groups.views.room import render_body
from tests.factories import make_membership


def post(group, user, body, **extra):
    return services.post_message(group, author=user, client_id=uuid.uuid4(), body=body, **extra)


def test_the_room_page_renders_recent_messages_as_escaped_plain_text_with_safe_links(
    client, group, member
):
    post(group, member, "<b>not bold</b>\nsee https://example.test/path?a=1&b=2.")
    client.force_login(member)
    response = client.get("/groups/evening-circle/room/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;b&gt;not bold&lt;/b&gt;\nsee " in html
    assert (
        '<a href="https://example.test/path?a=1&amp;b=2" rel="nofollow noopener noreferrer">'
        "https://example.test/path?a=1&amp;b=2</a>." in html
    )
    assert "<b>not bold</b>" not in html
    assert 'id="room-config" type="application/json"' in html
    assert "js/room.js" in html


def test_the_page_starts_the_client_from_the_rooms_seq_and_rev(client, group, member):
    seq = post(group, member, "hello").message.seq
    services.toggle_reaction(group, user=member, seq=seq, reaction="heart")
    client.force_login(member)
    response = client.get("/groups/evening-circle/room/")
    config = json.loads(
        re.search(
            r'<script id="room-config" type="application/json">(.*?)</script>',
            response.content.decode(),
        ).group(1)
    )
    assert (config["latestSeq"], config["latestRev"]) == (1, 1)


def test_a_content_note_naming_no_known_topic_folds_the_message_for_everyone(
    client, group, member, facilitator
):
    post(group, member, "the hard part", content_warning="a long day")
    client.force_login(facilitator)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert '<details class="chat-cw">' in html
    assert "Content note: a long day" in html


def test_a_content_note_naming_a_topic_folds_only_for_readers_who_soften_it(
    client, group, member, facilitator
):
    post(group, member, "the hard part", content_warning="loss")
    client.force_login(facilitator)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert '<details class="chat-cw">' not in html
    assert '<p class="chat-cw-label">Content note: loss</p>' in html

    services.set_content_boundaries(facilitator, actor=facilitator, topics=["grief"])
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert '<details class="chat-cw">' in html
    assert "Content note: loss" in html


def test_only_http_links_become_links():
    html = render_body('javascript:alert(1) <img src=x onerror="y"> ftp://example.test')
    assert "<a" not in html
    assert "&lt;img src=x onerror=&quot;y&quot;&gt;" in html


def test_someone_outside_the_group_is_refused_the_room_page_kindly(client, group, outsider):
    client.force_login(outsider)
    response = client.get("/groups/evening-circle/room/")
    assert response.status_code == 403
    assert "This space is for the group&#x27;s members." in response.content.decode()


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client, group):
    response = client.get("/groups/evening-circle/room/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_explains_why_a_muted_member_cannot_post(client, group, member):
    from datetime import timedelta

    from django.utils import timezone

    from groups.models import Membership

    Membership.objects.filter(user=member).update(muted_until=timezone.now() + timedelta(hours=1))
    client.force_login(member)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert "posting is paused for you until" in html
    assert 'id="room-form"' not in html


def test_history_pages_go_back_by_seq(client, group, member):
    Message.objects.bulk_create(  # directly: 60 posts would (rightly) hit the rate limit
        Message(group=group, seq=n, author=member, client_id=uuid.uuid4(), body=f"m{n}")
        for n in range(1, 61)
    )
    client.force_login(member)
    page = client.get("/groups/evening-circle/room/").content.decode()
    assert 'id="msg-11"' in page
    assert 'id="msg-10"' not in page  # only the newest 50 are rendered

    older = client.get("/groups/evening-circle/room/history/?before=11").json()
    assert [m["seq"] for m in older["messages"]] == list(range(1, 11))
    assert older["has_more"] is False
    assert older["messages"][0]["own"] is True
    assert "author_id" not in older["messages"][0]


def test_history_needs_a_seq_and_a_membership(client, group, member, outsider):
    client.force_login(member)
    assert client.get("/groups/evening-circle/room/history/?before=x").status_code == 400
    client.force_login(outsider)
    response = client.get("/groups/evening-circle/room/history/?before=5")
    assert response.status_code == 403
    assert response.json()["error"] == "not_member"


def test_the_unread_counts_name_each_group_of_the_member(group, member, facilitator):
    from groups import selectors
    from tests.factories import make_group

    quiet = make_group()
    make_membership(quiet, member)
    post(group, facilitator, "hello")
    assert selectors.unread_counts(member) == {group.pk: 1, quiet.pk: 0}
