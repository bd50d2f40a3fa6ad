"""Check-ins ("how present do you feel right now?"): the rules for recording one, the daily
offer in the member's own time zone, where each one may be seen, deleting one (and its card in
the room), the history chart, and the HTTP views."""

import asyncio
import re
import uuid
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.urls import reverse

from community.errors import DomainError, NotFound, PermissionDenied
from community.models import Notification
from community.realtime import room_group
from groups import selectors, services
from groups.models import CheckIn, Membership, Message, RoomPreference
from tests.factories import make_member, make_membership


def check_in(user, group=None, **extra):
    extra.setdefault("presence", 4)
    extra.setdefault("feelings", ["tired", "hopeful"])
    extra.setdefault("audience", "private")
    return services.record_check_in(user, group=group, **extra)


def snapshot():
    """Everything a check-in could have written."""
    return (
        CheckIn.objects.count(),
        Message.objects.count(),
        RoomPreference.objects.count(),
        Notification.objects.count(),
    )


# --- Recording: the rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"presence": 0}, "bad_presence"),
        ({"presence": 6}, "bad_presence"),
        ({"presence": "3"}, "bad_presence"),
        ({"presence": True}, "bad_presence"),
        ({"feelings": ["joyful"]}, "unknown_feeling"),
        ({"feelings": ["calm", 3]}, "unknown_feeling"),
        ({"feelings": "calm"}, "bad_feelings"),
        ({"feelings": ["calm", "tired", "sad", "numb"]}, "too_many_feelings"),
        ({"note": "x" * 141}, "note_too_long"),
        ({"note": 42}, "bad_note"),
        ({"note": "a\x00b"}, "bad_note"),
        ({"audience": "everyone"}, "bad_audience"),
    ],
)
def test_bad_input_is_refused_kindly_and_changes_nothing(group, member, extra, code):
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        check_in(member, group, **{"audience": "group", **extra})
    assert refused.value.code == code
    assert refused.value.message
    assert snapshot() == before


def test_a_group_you_are_not_an_active_member_of_is_refused(group, member, outsider):
    Membership.objects.filter(user=member).update(status="left")
    for user, audience in [(outsider, "group"), (outsider, "private"), (member, "facilitators")]:
        with pytest.raises(PermissionDenied) as refused:
            check_in(user, group, audience=audience)
        assert refused.value.code == "not_member"
    assert snapshot() == (0, 0, 0, 0)


def test_sharing_needs_a_group(member):
    with pytest.raises(DomainError) as refused:
        check_in(member, audience="group")
    assert refused.value.code == "group_required"
    assert snapshot() == (0, 0, 0, 0)


def test_a_note_is_one_line_and_repeated_feelings_count_once(member):
    saved = check_in(member, note="  a long\n day  ", feelings=["calm", "calm", "tired"])
    assert (saved.note, saved.feelings) == ("a long day", ["calm", "tired"])


# --- The daily offer ---------------------------------------------------------------------------


def test_not_today_holds_until_midnight_on_the_members_own_clock(member):
    # Willow lives in Berlin (UTC+1 in March): 22:30 UTC is 23:30 there, 23:05 UTC is tomorrow.
    late_evening = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    assert selectors.should_offer_check_in(member, now=late_evening)
    services.skip_check_in_offer(member, now=late_evening)
    assert not selectors.should_offer_check_in(
        member, now=datetime(2026, 3, 10, 22, 59, tzinfo=UTC)
    )
    assert selectors.should_offer_check_in(member, now=datetime(2026, 3, 10, 23, 5, tzinfo=UTC))
    assert RoomPreference.objects.get(user=member).check_in_offered_on.isoformat() == "2026-03-10"


def test_checking_in_counts_as_answering_the_offer_for_the_day(group, member):
    assert selectors.should_offer_check_in(member)
    check_in(member, group)
    assert not selectors.should_offer_check_in(member)
    services.skip_check_in_offer(member)  # a second answer the same day changes nothing
    assert RoomPreference.objects.filter(user=member).count() == 1


# --- Where it goes -----------------------------------------------------------------------------


def test_a_group_check_in_becomes_a_card_in_the_room(group, member, facilitator):
    services.post_message(group, author=facilitator, client_id=uuid.uuid4(), body="Welcome")
    saved = check_in(member, group, audience="group", note="slept badly", presence=2)
    message = saved.message
    assert (message.seq, message.kind, message.body) == (2, "checkin", "slept badly")
    [_welcome, payload] = selectors.messages_after(
        Membership.objects.get(user=facilitator), after=0
    )
    frame = selectors.frame_for_viewer(payload, viewer_id=facilitator.pk)
    assert frame["check_in"] == {
        "presence": 2,
        "presence_label": "A bit distant",
        "feelings": ["tired", "hopeful"],
    }
    assert (frame["body"], frame["author"], frame["own"]) == (
        "slept badly",
        {"name": "Willow"},
        False,
    )


def test_retrying_a_group_check_in_with_its_client_id_stores_it_once(group, member):
    client_id = uuid.uuid4()
    first = check_in(member, group, audience="group", client_id=client_id)
    again = check_in(member, group, audience="group", client_id=client_id)
    assert again.pk == first.pk
    assert (CheckIn.objects.count(), Message.objects.count()) == (1, 1)


def test_a_group_check_in_is_refused_while_posting_is_paused_and_nothing_is_kept(group, member):
    Membership.objects.filter(user=member).update(agreement_version=None)
    with pytest.raises(DomainError) as refused:
        check_in(member, group, audience="group")
    assert refused.value.code == "agreement_changed"
    assert snapshot() == (0, 0, 0, 0)


def test_a_card_note_is_screened_like_any_message(group, member, facilitator):
    saved = check_in(member, group, audience="group", note="call me on 0151 496 0000")
    assert saved.message.held_at is not None
    [payload] = selectors.messages_after(Membership.objects.get(user=facilitator), after=0)
    others = selectors.frame_for_viewer(payload, viewer_id=facilitator.pk)
    assert (others["body"], "check_in" in others) == ("", False)
    assert selectors.frame_for_viewer(payload, viewer_id=member.pk)["check_in"]["presence"] == 4


def test_building_card_payloads_costs_no_query_per_message(
    group, member, django_assert_num_queries
):
    for _ in range(4):
        check_in(member, group, audience="group")
    messages = list(Message.objects.select_related("author"))
    with django_assert_num_queries(2):  # the reactions, and the check-ins
        payloads = selectors.message_payloads(messages)
    assert all(p["check_in"]["presence"] == 4 for p in payloads)


def test_facilitators_only_reaches_the_facilitators_and_no_other_member(
    group, member, facilitator, moderator
):
    other = make_member(display_name="Rowan")
    make_membership(group, other)
    saved = check_in(member, group, audience="facilitators", note="a hard week")

    assert Message.objects.count() == 0
    [notice] = Notification.objects.all()
    assert (notice.user, notice.title) == (facilitator, "Willow shared a check-in with you")
    assert notice.url == reverse("groups:shared_check_ins", kwargs={"slug": group.slug})
    assert "a hard week" not in notice.title + notice.body
    assert selectors.check_ins_for_facilitators(group, user=facilitator) == [saved]
    assert selectors.check_ins_for_facilitators(group, user=moderator) == [saved]
    for user in (other, member):
        with pytest.raises(PermissionDenied):
            selectors.check_ins_for_facilitators(group, user=user)


def test_a_private_check_in_never_appears_to_anyone_else(client, group, member, facilitator):
    check_in(member, group, note="only mine")
    assert selectors.check_ins_for_facilitators(group, user=facilitator) == []
    assert Message.objects.count() == 0
    assert Notification.objects.count() == 0
    client.force_login(facilitator)
    for url in (
        reverse("groups:shared_check_ins", kwargs={"slug": group.slug}),
        reverse("groups:my_check_ins"),
        reverse("groups:room", kwargs={"slug": group.slug}),
    ):
        assert "only mine" not in client.get(url).content.decode()


# --- Deleting ----------------------------------------------------------------------------------


def test_deleting_a_group_check_in_takes_its_card_out_of_the_room(group, member, facilitator):
    saved = check_in(member, group, audience="group", note="tender today")
    services.toggle_reaction(group, user=facilitator, seq=saved.message.seq, reaction="heart")
    services.delete_check_in(saved.pk, user=member)

    assert not CheckIn.objects.exists()
    card = Message.objects.get()
    assert (card.body, card.deleted_at is not None, card.rev) == ("", True, 2)
    [payload] = selectors.messages_after(Membership.objects.get(user=facilitator), after=0)
    assert (payload["deleted"], payload["body"], "check_in" in payload) == (True, "", False)


def test_a_member_may_delete_a_check_in_after_leaving_the_group(group, member):
    saved = check_in(member, group, audience="group")
    Membership.objects.filter(user=member).update(status="left")
    services.delete_check_in(saved.pk, user=member)
    assert not CheckIn.objects.exists()
    assert Message.objects.get().deleted_at is not None


def test_nobody_can_delete_someone_elses_check_in(group, member, facilitator):
    saved = check_in(member, group, audience="group")
    with pytest.raises(NotFound):
        services.delete_check_in(saved.pk, user=facilitator)
    assert CheckIn.objects.count() == 1
    assert Message.objects.get().deleted_at is None


@pytest.mark.django_db(transaction=True)
async def test_the_room_hears_a_card_arrive_and_leave_over_the_real_channel_layer(group, member):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(room_group(group.pk), channel)
    try:
        saved = await database_sync_to_async(check_in)(member, group, audience="group")
        event = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert event["type"] == "chat.message"
        assert (event["message"]["seq"], event["message"]["kind"]) == (1, "checkin")
        assert event["message"]["check_in"]["presence_label"] == "Mostly here"

        await database_sync_to_async(services.delete_check_in)(saved.pk, user=member)
        event = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert event["type"] == "chat.update"
        assert (event["message"]["seq"], event["message"]["deleted"]) == (1, True)
    finally:
        await layer.group_discard(room_group(group.pk), channel)
        await layer.flush()


# --- The chart ---------------------------------------------------------------------------------


def test_the_chart_is_an_accessible_image_and_never_markup_from_a_note(member):
    check_in(member, presence=2)
    check_in(member, presence=5, note='<script>alert("hi")</script> & more')
    entries = selectors.check_in_entries(selectors.my_check_ins(member), zone=member.zone)
    svg = str(selectors.check_in_chart_svg(list(reversed(entries))))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="checkin-chart-title checkin-chart-desc"' in svg
    assert '<title id="checkin-chart-title">' in svg and '<desc id="checkin-chart-desc">' in svg
    assert "<script" not in svg
    assert "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; more" in svg
    assert svg.count("<circle") == 2
    assert selectors.check_in_chart_svg([]) == ""


# --- Views -------------------------------------------------------------------------------------


def post_check_in(client, group, data, *, json=True):
    url = reverse("groups:record_check_in", kwargs={"slug": group.slug})
    headers = {"Accept": "application/json"} if json else {}
    return client.post(url, data, headers=headers)


def test_the_dialog_posts_a_check_in_and_gets_a_kind_answer(client, group, member):
    client.force_login(member)
    data = {"presence": "3", "feelings": ["calm", "curious"], "note": "ok", "audience": "group"}
    response = post_check_in(client, group, data | {"client_id": str(uuid.uuid4())})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    saved = CheckIn.objects.get()
    assert (saved.presence, saved.feelings, saved.audience) == (3, ["calm", "curious"], "group")
    assert Message.objects.get().kind == "checkin"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"presence": "7", "audience": "private"}, "how present you feel"),
        ({"audience": "private"}, "how present you feel"),
        ({"presence": "3", "feelings": ["joyful"], "audience": "private"}, "feeling words"),
        (
            {"presence": "3", "feelings": ["calm", "sad", "numb", "safe"], "audience": "private"},
            "Up to 3 feeling words",
        ),
        ({"presence": "3", "note": "x" * 141, "audience": "private"}, "one short line"),
        ({"presence": "3", "audience": "world"}, "who sees this check-in"),
    ],
)
def test_form_errors_are_kind_and_change_nothing(client, group, member, data, words):
    client.force_login(member)
    response = post_check_in(client, group, data)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert words in response.json()["message"]
    assert snapshot() == (0, 0, 0, 0)


def test_without_javascript_a_check_in_goes_back_to_the_room_with_a_message(
    client, group, member, outsider
):
    client.force_login(member)
    data = {"presence": "5", "audience": "private"}
    response = post_check_in(client, group, data, json=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("groups:room", kwargs={"slug": group.slug})
    assert CheckIn.objects.count() == 1

    client.force_login(outsider)
    response = post_check_in(client, group, data, json=True)
    assert (response.status_code, response.json()["ok"]) == (403, False)
    assert CheckIn.objects.count() == 1


def test_the_room_offers_the_dialog_until_the_member_answers_today(client, group, member):
    client.force_login(member)
    room = reverse("groups:room", kwargs={"slug": group.slug})
    html = client.get(room).content.decode()
    dialog = re.search(r"<dialog [^>]*>", html).group(0)
    assert 'id="checkin-dialog"' in dialog and 'data-offer="true"' in dialog
    for element_id in (
        "checkin-open",
        "checkin-form",
        "checkin-presence-1",
        "checkin-presence-5",
        "checkin-feeling-calm",
        "checkin-note",
        "checkin-audience-private",
        "checkin-audience-group",
        "checkin-audience-facilitators",
        "checkin-save",
        "checkin-skip",
    ):
        assert f'id="{element_id}"' in html
    assert "js/room-checkins.js" in html

    skip = client.post(reverse("groups:skip_check_in", kwargs={"slug": group.slug}))
    assert skip.status_code == 302
    dialog = re.search(r"<dialog [^>]*>", client.get(room).content.decode()).group(0)
    assert 'data-offer="false"' in dialog and " open" not in dialog


def test_the_room_renders_a_check_in_card_server_side(client, group, member, facilitator):
    check_in(member, group, audience="group", presence=4, feelings=["tender"], note="<i>hi</i>")
    client.force_login(member)
    html = client.get(reverse("groups:room", kwargs={"slug": group.slug})).content.decode()
    item = re.search(r'<li class="chat-item chat-item-checkin".*?</li>\s*</ol>', html, re.S)
    card = item.group(0)
    assert "Willow is mostly here" in card
    assert "<li>tender</li>" in card
    assert "&lt;i&gt;hi&lt;/i&gt;" in card
    assert "chat-reactions" in card and "chat-delete" in card and "chat-edit" not in card


def test_my_check_ins_page_shows_the_chart_and_every_entry(client, group, member):
    check_in(member, group, audience="group", note="the earlier one")
    check_in(member, presence=1, note="the later one")
    client.force_login(member)
    response = client.get(reverse("groups:my_check_ins"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="checkin-chart"' in html and 'id="checkin-history"' in html
    table = html[html.index('id="checkin-history"') :]
    assert table.index("the later one") < table.index("the earlier one")  # newest first
    assert "Shared with Evening circle" in html


def test_deleting_from_my_check_ins_and_another_member_gets_404(client, group, member, facilitator):
    saved = check_in(member, group, audience="group")
    url = reverse("groups:delete_check_in", kwargs={"pk": saved.pk})
    client.force_login(facilitator)
    assert client.post(url).status_code == 404
    assert CheckIn.objects.count() == 1

    client.force_login(member)
    response = client.post(url)
    assert response["Location"] == reverse("groups:my_check_ins")
    assert not CheckIn.objects.exists()
    assert Message.objects.get().deleted_at is not None


def test_the_shared_page_is_for_facilitators_only(client, group, member, facilitator):
    check_in(member, group, audience="facilitators", note="please know")
    url = reverse("groups:shared_check_ins", kwargs={"slug": group.slug})
    client.force_login(member)
    assert client.get(url).status_code == 403
    client.force_login(facilitator)
    html = client.get(url).content.decode()
    assert "Willow" in html and "please know" in html
