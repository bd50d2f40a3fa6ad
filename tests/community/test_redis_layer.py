"""The channel layer on real Redis: the redis-py 8 trap must stay closed.

redis-py 8 defaults to a 5 s socket read timeout and a 100-connection async pool. channels_redis
4.3 blocks on Redis for up to 5 s per receive, so idle consumers crashed every 5 s and handshake
bursts failed. These tests hold a receive idle past 5 s and open more than 100 blocking receives.
"""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer


@pytest.fixture
async def layer():
    layer = get_channel_layer()
    yield layer
    await layer.flush()


async def test_a_receive_left_idle_for_longer_than_five_seconds_still_gets_its_message(layer):
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))

    await asyncio.sleep(6.5)
    assert not waiting.done(), "the idle receive died instead of waiting"
    await layer.send(channel, {"type": "hello", "n": 1})

    message = await asyncio.wait_for(waiting, timeout=5)
    assert message == {"type": "hello", "n": 1}


async def test_more_than_a_hundred_blocking_receives_at_once_all_get_their_messages(layer):
    channels = [f"test.burst.{uuid.uuid4().hex}" for _ in range(150)]
    receivers = [asyncio.create_task(layer.receive(c)) for c in channels]
    await asyncio.sleep(0.5)

    for i, channel in enumerate(channels):
        await layer.send(channel, {"type": "n", "i": i})

    results = await asyncio.wait_for(asyncio.gather(*receivers), timeout=20)
    assert [m["i"] for m in results] == list(range(150))
