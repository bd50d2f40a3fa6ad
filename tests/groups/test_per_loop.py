"""The room sockets' one-per-process pieces (hub, watch, the database thread's turns) are one
per running event loop (``PerLoop``): shared by that loop's sockets, fresh for another loop."""

import asyncio

from channels.layers import InMemoryChannelLayer

from groups.consumers.common import DatabaseTurns
from groups.consumers.hub import RoomHub
from groups.consumers.watch import RoomWatch


async def test_one_of_each_kind_per_loop_and_the_kinds_kept_apart():
    layer = InMemoryChannelLayer()
    turns, watch, hub = (
        DatabaseTurns.of_running_loop(),
        RoomWatch.of_running_loop(),
        RoomHub.of_running_loop(layer),
    )

    assert DatabaseTurns.of_running_loop() is turns
    assert RoomWatch.of_running_loop() is watch
    assert RoomHub.of_running_loop(layer) is hub
    assert isinstance(watch, RoomWatch)  # not the turns registered under the same loop
    assert isinstance(hub, RoomHub)


def test_another_event_loop_gets_its_own():
    async def mine():
        return RoomWatch.of_running_loop()

    first, second = asyncio.run(mine()), asyncio.run(mine())

    assert first is not second
    assert first.loop is not second.loop


async def test_a_hub_for_another_channel_layer_replaces_the_old_one():
    old = RoomHub.of_running_loop(InMemoryChannelLayer())
    layer = InMemoryChannelLayer()

    new = RoomHub.of_running_loop(layer)

    assert new is not old
    assert new.layer is layer
    assert RoomHub.of_running_loop(layer) is new


async def test_a_forgotten_one_is_made_anew_next_time():
    watch = RoomWatch.of_running_loop()

    watch.forget()
    watch.forget()  # twice is harmless

    assert RoomWatch.of_running_loop() is not watch
