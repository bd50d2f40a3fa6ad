"""Go-around rounds: who gets a turn, in which order, sharing and passing, skipping and ending,
every refusal changing nothing, and turn changes that hold when two people act at once."""

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.db.models import F
from django.utils import timezone

from community.asgi import application
from community.errors import DomainError
from community.realtime import room_group
from groups import selectors, services
from groups.models import Membership, Message, Round, RoundTurn
from tests.concurrency import race
from tests.factories import make_group, make_member, make_membership, make_session_key

PROMPT = "One word for how you arrived today"


@pytest.fixture
def alder(group, member):
    """A third member, who joined after Willow."""
    user = make_member(display_name="Alder", email="alder@example.test")
    make_membership(group, user)
    return user


def here(group, *users):
    """Each of ``users`` has a socket in the room (presence, as the consumer writes it)."""
    for user in users:
        membership = Membership.objects.select_related("user").get(group=group, user=user)
        services.enter_room(membership, connection_id=f"test-socket-{user.pk}")


def membership_id(group, user) -> int:
    return Membership.objects.get(group=group, user=user).pk


def snapshot(group):
    """Everything a round change could touch, to show that a refusal changed nothing."""
    return (
        list(Round.objects.filter(group=group).order_by("pk").values()),
        list(RoundTurn.objects.filter(round__group=group).order_by("pk").values()),
        list(Message.objects.filter(group=group).order_by("seq").values_list("seq", "body")),
    )


def turns(round_):
    return list(
        RoundTurn.objects.filter(round=round_)
        .order_by("position")
        .values_list("user__display_name", "status")
    )


def share(group, user, body="Tired but here", **extra):
    return services.share_turn(
        group, user=user, client_id=extra.pop("client_id", uuid.uuid4()), body=body, **extra
    )


def refused(code, call, group):
    """``call()`` is refused with ``code`` and the database is exactly as it was."""
    before = snapshot(group)
    with pytest.raises(DomainError) as refusal:
        call()
    assert refusal.value.code == code
    assert refusal.value.message
    assert snapshot(group) == before


@pytest.fixture
def started(group, facilitator, member, alder):
    """Maple, Willow and Alder are here; Maple starts a round (her own turn is first)."""
    here(group, facilitator, member, alder)
    return services.start_round(group, actor=facilitator, prompt=PROMPT)


# --- Who takes a turn, in which order -----------------------------------------------------------


def test_a_round_gives_the_members_here_a_turn_in_join_order_the_first_one_current(
    group, facilitator, member, alder
):
    away = make_member(display_name="Birch")
    make_membership(group, away)
    here(group, facilitator, member, alder)

    round_ = services.start_round(group, actor=facilitator, prompt=f"  {PROMPT}  ")

    assert round_.prompt == PROMPT
    assert (round_.state, round_.version, round_.started_by) == ("active", 1, facilitator)
    assert turns(round_) == [("Maple", "current"), ("Willow", "waiting"), ("Alder", "waiting")]


def test_members_who_hid_their_presence_get_no_turn(group, facilitator, member, alder):
    here(group, facilitator, member, alder)
    services.set_presence_hidden(group, user=member, hidden=True)

    round_ = services.start_round(group, actor=facilitator, prompt=PROMPT)

    assert [name for name, _status in turns(round_)] == ["Maple", "Alder"]


def test_a_facilitator_who_is_not_here_starts_a_round_for_the_others(
    group, facilitator, member, alder
):
    here(group, member, alder)
    round_ = services.start_round(group, actor=facilitator, prompt=PROMPT)
    assert turns(round_) == [("Willow", "current"), ("Alder", "waiting")]


def test_the_facilitator_sets_the_order_and_anyone_it_leaves_out_follows_in_join_order(
    group, facilitator, member, alder
):
    here(group, facilitator, member, alder)
    candidates = selectors.round_candidates(group, viewer=facilitator)
    assert [c["name"] for c in candidates] == ["Maple", "Willow", "Alder"]

    order = [membership_id(group, alder), membership_id(group, member)]
    round_ = services.start_round(group, actor=facilitator, prompt=PROMPT, order=order)

    assert turns(round_) == [("Alder", "current"), ("Willow", "waiting"), ("Maple", "waiting")]


# --- Taking turns -------------------------------------------------------------------------------


def test_shares_and_passes_move_the_turn_on_and_the_round_ends_by_itself(
    group, started, facilitator, member, alder
):
    first = share(group, facilitator, "Tired but here")
    assert turns(started) == [("Maple", "shared"), ("Willow", "current"), ("Alder", "waiting")]
    maple_turn = RoundTurn.objects.get(round=started, user=facilitator)
    assert maple_turn.message == first.message
    assert first.message.body == "Tired but here"

    services.pass_turn(group, user=member)
    assert turns(started) == [("Maple", "shared"), ("Willow", "passed"), ("Alder", "current")]

    share(group, alder, "Curious")
    started.refresh_from_db()
    assert started.state == "ended"
    assert started.ended_at is not None
    assert started.version == 4  # started, then one change per turn
    assert turns(started) == [("Maple", "shared"), ("Willow", "passed"), ("Alder", "shared")]
    assert list(Message.objects.filter(group=group).values_list("body", flat=True)) == [
        "Tired but here",
        "Curious",
    ]


def test_a_share_sent_twice_with_one_client_id_is_stored_once_and_moves_the_turn_once(
    group, started, facilitator
):
    client_id = uuid.uuid4()
    first = share(group, facilitator, client_id=client_id)
    again = share(group, facilitator, client_id=client_id)

    assert again.created is False
    assert again.message == first.message
    assert Message.objects.filter(group=group).count() == 1
    assert turns(started)[1] == ("Willow", "current")
    assert Round.objects.get(pk=started.pk).version == 2


def test_the_facilitator_skips_a_turn_then_ends_the_round(
    group, started, facilitator, member, alder
):
    share(group, facilitator)
    services.skip_turn(group, actor=facilitator, position=2)
    assert turns(started) == [("Maple", "shared"), ("Willow", "skipped"), ("Alder", "current")]

    services.end_round(group, actor=facilitator, round_id=started.pk)

    started.refresh_from_db()
    assert (started.state, started.version) == ("ended", 4)
    # Turns not taken are simply not taken: no current turn remains.
    assert turns(started) == [("Maple", "shared"), ("Willow", "skipped"), ("Alder", "waiting")]


@pytest.mark.django_db(transaction=True)
async def test_each_change_tells_the_room_after_commit(group, started, facilitator):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(room_group(group.pk), channel)
    try:
        await database_sync_to_async(services.pass_turn)(group, user=facilitator)
        event = await asyncio.wait_for(layer.receive(channel), 5)
    finally:
        await layer.flush()

    assert event["type"] == "round.state"
    assert (event["round"]["id"], event["round"]["version"]) == (started.pk, 2)
    assert event["round"]["current"] == 2


def test_a_member_who_leaves_on_their_turn_is_skipped_and_a_waiting_one_when_it_comes(
    group, started, facilitator, member, alder, django_capture_on_commit_callbacks
):
    services.pass_turn(group, user=facilitator)
    with django_capture_on_commit_callbacks(execute=True):
        services.leave_group(group, user=member)  # it was Willow's turn
    assert turns(started) == [("Maple", "passed"), ("Willow", "skipped"), ("Alder", "current")]

    # Removed without a service (no signal): the facilitator can always skip the turn.
    Membership.objects.filter(group=group, user=alder).update(status="removed")
    services.skip_turn(group, actor=facilitator, position=3)
    started.refresh_from_db()
    assert started.state == "ended"


def test_a_waiting_turn_of_a_member_who_left_is_passed_over_when_it_comes(
    group, started, facilitator, member, alder
):
    Membership.objects.filter(group=group, user=member).update(status="left")
    share(group, facilitator)
    assert turns(started) == [("Maple", "shared"), ("Willow", "skipped"), ("Alder", "current")]


# --- What each member sees ----------------------------------------------------------------------


def test_each_member_sees_whose_turn_it_is_by_display_name_only(
    group, started, facilitator, member, outsider
):
    services.pass_turn(group, user=facilitator)

    willow = selectors.round_state(group, viewer=member)
    maple = selectors.round_state(group, viewer=facilitator)

    assert willow == {
        "id": started.pk,
        "prompt": PROMPT,
        "state": "active",
        "version": 2,
        "turns": [
            {"position": 1, "name": "Maple", "status": "passed", "own": False},
            {"position": 2, "name": "Willow", "status": "current", "own": True},
            {"position": 3, "name": "Alder", "status": "waiting", "own": False},
        ],
        "current": 2,
        "your_turn": True,
        "can_facilitate": False,
    }
    assert (maple["your_turn"], maple["can_facilitate"]) == (False, True)
    with pytest.raises(DomainError) as refusal:
        selectors.round_state(group, viewer=outsider)
    assert refusal.value.code == "not_member"


def test_an_ended_round_stays_in_the_panel_for_a_while_then_the_panel_is_quiet(
    group, started, facilitator, member
):
    services.end_round(group, actor=facilitator)
    assert selectors.round_state(group, viewer=member)["state"] == "ended"

    Round.objects.filter(pk=started.pk).update(ended_at=timezone.now() - timedelta(hours=1))
    quiet = selectors.round_state(group, viewer=member)
    assert (quiet["id"], quiet["state"], quiet["turns"], quiet["current"]) == (
        None,
        "none",
        [],
        None,
    )


# --- Bad input: a clear, kind refusal, and nothing changes --------------------------------------


def test_passing_or_sharing_when_it_is_not_your_turn_changes_nothing(
    group, started, facilitator, member, alder, outsider
):
    refused("not_your_turn", lambda: services.pass_turn(group, user=member), group)
    refused("not_your_turn", lambda: share(group, alder), group)
    refused("not_member", lambda: services.pass_turn(group, user=outsider), group)


def test_only_a_facilitator_starts_a_round(group, facilitator, member, outsider):
    here(group, facilitator, member)
    refused(
        "not_facilitator",
        lambda: services.start_round(group, actor=member, prompt=PROMPT),
        group,
    )
    refused("not_member", lambda: services.start_round(group, actor=outsider, prompt=PROMPT), group)


def test_a_member_cannot_skip_or_end_the_round(group, started, member):
    refused("not_facilitator", lambda: services.skip_turn(group, actor=member), group)
    refused("not_facilitator", lambda: services.end_round(group, actor=member), group)


def test_a_second_round_while_one_is_going_is_refused(group, started, facilitator):
    refused(
        "round_active",
        lambda: services.start_round(group, actor=facilitator, prompt="Another"),
        group,
    )


@pytest.mark.parametrize(
    ("prompt", "code"),
    [
        ("", "empty_prompt"),
        ("   \n ", "empty_prompt"),
        (None, "empty_prompt"),
        ("x" * 201, "prompt_too_long"),
        (42, "bad_prompt"),
        ("nul\x00", "bad_prompt"),
    ],
)
def test_an_empty_too_long_or_non_text_prompt_is_refused(group, facilitator, member, prompt, code):
    here(group, facilitator, member)
    refused(code, lambda: services.start_round(group, actor=facilitator, prompt=prompt), group)


def test_an_order_naming_someone_not_here_or_not_a_member_is_refused(
    group, facilitator, member, alder
):
    here(group, facilitator, member)  # Alder is a member but not here
    elsewhere = make_group()
    stranger = make_membership(elsewhere, make_member())
    for order in (
        [membership_id(group, member), membership_id(group, alder)],
        [stranger.pk],
        [999_999],
    ):
        refused(
            "order_not_present",
            lambda order=order: services.start_round(
                group, actor=facilitator, prompt=PROMPT, order=order
            ),
            group,
        )


@pytest.mark.parametrize("order", ["1,2", [1, 1], [True], ["1"], [0], {"a": 1}])
def test_a_malformed_order_is_refused(group, facilitator, member, order):
    here(group, facilitator, member)
    if order == [1, 1]:
        order = [membership_id(group, member)] * 2
    refused(
        "bad_order",
        lambda: services.start_round(group, actor=facilitator, prompt=PROMPT, order=order),
        group,
    )


def test_a_round_with_nobody_here_is_refused(group, facilitator, member):
    refused(
        "nobody_present",
        lambda: services.start_round(group, actor=facilitator, prompt=PROMPT),
        group,
    )


def test_acting_on_an_ended_round_changes_nothing(group, started, facilitator, member):
    services.end_round(group, actor=facilitator)
    ended = started.pk
    refused("no_round", lambda: services.pass_turn(group, user=facilitator), group)
    refused("no_round", lambda: share(group, facilitator), group)
    refused("no_round", lambda: services.skip_turn(group, actor=facilitator), group)
    refused("no_round", lambda: services.end_round(group, actor=facilitator), group)
    # Naming the ended round is refused even once a new round is going.
    services.start_round(group, actor=facilitator, prompt="A second go-around")
    refused(
        "round_ended", lambda: services.pass_turn(group, user=facilitator, round_id=ended), group
    )
    refused("round_ended", lambda: share(group, facilitator, round_id=ended), group)
    refused(
        "round_ended", lambda: services.skip_turn(group, actor=facilitator, round_id=ended), group
    )
    refused(
        "round_ended", lambda: services.end_round(group, actor=facilitator, round_id=ended), group
    )
    refused("bad_round", lambda: services.pass_turn(group, user=facilitator, round_id="x"), group)


def test_skipping_a_turn_that_already_moved_on_skips_nothing(group, started, facilitator):
    services.pass_turn(group, user=facilitator)
    refused(
        "turn_moved_on", lambda: services.skip_turn(group, actor=facilitator, position=1), group
    )
    refused("bad_turn", lambda: services.skip_turn(group, actor=facilitator, position="2"), group)


def test_a_share_the_room_rules_refuse_stores_nothing_and_keeps_the_turn(
    group, started, facilitator
):
    refused("empty_body", lambda: share(group, facilitator, "   "), group)
    refused("bad_client_id", lambda: share(group, facilitator, client_id="nope"), group)


# --- Two people acting at once (PostgreSQL row locks) -------------------------------------------

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="Needs PostgreSQL row locks (SELECT ... FOR UPDATE); set DATABASE_URL to run it.",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_double_tap_on_pass_passes_one_turn(group, started, facilitator):
    outcomes = race(
        lambda: services.pass_turn(group, user=facilitator),
        lambda: services.pass_turn(group, user=facilitator),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["DomainError", "Round"]
    assert [o.code for o in outcomes if isinstance(o, DomainError)] == ["not_your_turn"]
    assert turns(started) == [("Maple", "passed"), ("Willow", "current"), ("Alder", "waiting")]
    assert Round.objects.get(pk=started.pk).version == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_pass_and_a_skip_at_the_same_moment_finish_the_turn_once(group, started, facilitator):
    services.pass_turn(group, user=facilitator)
    willow = RoundTurn.objects.get(round=started, position=2).user
    outcomes = race(
        lambda: services.pass_turn(group, user=willow),
        lambda: services.skip_turn(group, actor=facilitator, position=2),
    )
    assert sum(isinstance(o, DomainError) for o in outcomes) == 1
    assert turns(started)[1][1] in ("passed", "skipped")
    assert turns(started)[2] == ("Alder", "current")
    assert Round.objects.get(pk=started.pk).version == 3


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_facilitators_starting_a_round_at_once_give_one_round(
    group, facilitator, member, alder
):
    Membership.objects.filter(group=group, user=alder).update(role="facilitator")
    here(group, facilitator, member, alder)
    outcomes = race(
        lambda: services.start_round(group, actor=facilitator, prompt=PROMPT),
        lambda: services.start_round(group, actor=alder, prompt="Another prompt"),
    )
    assert [o.code for o in outcomes if isinstance(o, DomainError)] == ["round_active"]
    assert Round.objects.filter(group=group).count() == 1


# --- On the socket --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_socket_is_told_the_round_after_resume_and_catches_up_on_a_missed_change(
    group, facilitator, member
):
    await database_sync_to_async(here)(group, facilitator)
    key = await database_sync_to_async(make_session_key)(member)
    socket = WebsocketCommunicator(
        application,
        "/ws/groups/evening-circle/",
        headers=[(b"origin", b"http://localhost:8000"), (b"cookie", f"sessionid={key}".encode())],
    )
    assert (await socket.connect(timeout=5))[0]

    async def next_frame(kind):
        while True:
            frame = json.loads(await socket.receive_from(timeout=5))
            if frame["type"] == kind:
                return frame

    try:
        await socket.send_to(text_data=json.dumps({"type": "resume", "after": 0}))
        await next_frame("resumed")
        started = await database_sync_to_async(services.start_round)(
            group, actor=facilitator, prompt=PROMPT
        )
        live = await next_frame("round")
        assert (live["id"], live["version"], live["current"], live["your_turn"]) == (
            started.pk,
            1,
            1,
            False,
        )
        assert "user_id" not in json.dumps(live) and "facilitator_ids" not in live

        # A change whose broadcast never came (written without one): the 2 s check sends it.
        await database_sync_to_async(Round.objects.filter(pk=started.pk).update)(
            version=F("version") + 1
        )
        assert (await next_frame("round"))["version"] == 2

        # Out of turn: a refusal the round panel shows.
        await socket.send_to(text_data=json.dumps({"type": "round_pass"}))
        refusal = await next_frame("error")
        assert (refusal["code"], refusal["about"]) == ("not_your_turn", "round")

        # A reconnecting socket is told the round right after its resume.
        await socket.send_to(text_data=json.dumps({"type": "resume", "after": 0}))
        await next_frame("resumed")
        assert (await next_frame("round"))["version"] == 2
    finally:
        await socket.disconnect()
        await get_channel_layer().flush()
