"""The room sockets' sends share turns of the database thread (``DatabaseTurns``): calls that
wait together go in one hop, each with its own transaction, result or error, in order."""

import asyncio
import threading
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from community.errors import DomainError
from groups import services
from groups.consumers.common import DatabaseTurns
from groups.models import Membership, Message
from tests.factories import make_member, make_membership

pytestmark = pytest.mark.django_db(transaction=True)


def where_and_what(n):
    return threading.get_ident(), n


def refuse_odd(n):
    if n % 2:
        raise DomainError("Not this one.", code="odd")
    return n


async def test_calls_waiting_together_go_in_one_turn_in_order_each_with_its_own_result():
    turns = DatabaseTurns.of_running_loop()
    results = await asyncio.gather(*(turns.run(where_and_what, n) for n in range(5)))

    assert [n for _thread, n in results] == [0, 1, 2, 3, 4]
    threads = {thread for thread, _n in results}
    assert len(threads) == 1
    assert threads != {threading.get_ident()}  # the database thread, not the event loop's
    assert turns.turns == 1


async def test_a_calls_result_comes_back_before_the_rest_of_its_turn_is_done():
    release = threading.Event()

    def slow():
        release.wait(5)
        return "slow"

    turns = DatabaseTurns.of_running_loop()
    first = asyncio.ensure_future(turns.run(where_and_what, 1))
    second = asyncio.ensure_future(turns.run(slow))
    try:
        assert (await asyncio.wait_for(asyncio.shield(first), 2))[1] == 1
        assert not second.done()
    finally:
        release.set()
    assert await second == "slow"
    assert turns.turns == 1


async def test_one_calls_error_reaches_only_its_caller():
    turns = DatabaseTurns.of_running_loop()
    results = await asyncio.gather(
        *(turns.run(refuse_odd, n) for n in range(4)), return_exceptions=True
    )

    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], DomainError) and results[1].code == "odd"
    assert isinstance(results[3], DomainError)


async def test_more_calls_than_one_turn_takes_wait_for_the_next_turn_in_order():
    turns = DatabaseTurns.of_running_loop()
    count = DatabaseTurns.MAX_CALLS * 2 + 1
    results = await asyncio.gather(*(turns.run(where_and_what, n) for n in range(count)))

    assert [n for _thread, n in results] == list(range(count))
    assert turns.turns == 3


async def test_a_call_whose_caller_stopped_waiting_is_not_run_and_stops_no_other():
    ran = []

    def record(n):
        ran.append(n)
        return n

    turns = DatabaseTurns.of_running_loop()
    tasks = [asyncio.create_task(turns.run(record, n)) for n in range(3)]
    await asyncio.sleep(0)  # each call is waiting now; the turn has not started
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], asyncio.CancelledError)
    assert ran == [0, 2]


async def test_a_call_at_a_persons_pace_is_a_turn_of_its_own():
    turns = DatabaseTurns.of_running_loop()
    first = await turns.run(where_and_what, 1)
    second = await turns.run(where_and_what, 2)

    assert (first[1], second[1]) == (1, 2)
    assert turns.turns == 2  # nothing held back to wait for company


async def test_sends_in_one_turn_are_stored_with_gap_free_seqs_and_a_muted_members_alone_refused(
    group, member, facilitator
):
    quiet = await database_sync_to_async(make_member)(display_name="Rowan")
    seat = await database_sync_to_async(make_membership)(group, quiet)
    await database_sync_to_async(Membership.objects.filter(pk=seat.pk).update)(
        muted_until=timezone.now() + timedelta(hours=1)
    )
    turns = DatabaseTurns.of_running_loop()

    def send(user, body):
        return turns.run(
            services.post_message, group, author=user, client_id=uuid.uuid4(), body=body
        )

    results = await asyncio.gather(
        send(member, "first"),
        send(quiet, "not now"),
        send(facilitator, "second"),
        send(member, "third"),
        return_exceptions=True,
    )

    assert turns.turns == 1
    assert [r.message.seq for r in (results[0], results[2], results[3])] == [1, 2, 3]
    assert isinstance(results[1], DomainError) and results[1].code == "muted"
    stored = await database_sync_to_async(
        lambda: list(Message.objects.order_by("seq").values_list("seq", "body"))
    )()
    assert stored == [(1, "first"), (2, "second"), (3, "third")]
