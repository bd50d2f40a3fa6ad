"""Compare channels_redis's two layers (core lists vs pub/sub) for the chat room's traffic shape.

A room is ~12 sockets in one group. We measure, on the Redis named by REDIS_URL (database 2):
- fan-out latency: one group_send reaching all 12 receivers (p50 / p95 / p99, milliseconds),
- throughput: group_sends per second with 12 receivers draining,
- one-to-one send latency.

Run: REDIS_URL=redis://127.0.0.1:6379 .venv/bin/python bench/channel_layers.py
Numbers are noisy on a shared machine; compare ratios from one run, not absolute values.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")

import django

django.setup()

from channels_redis.core import RedisChannelLayer  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402
from django.conf import settings  # noqa: E402

RECEIVERS = 12
LATENCY_ROUNDS = 300
THROUGHPUT_MESSAGES = 1000


def host() -> dict:
    return dict(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])


def layers():
    return {
        "core": lambda: RedisChannelLayer(hosts=[host()], capacity=5000, expiry=30),
        "pubsub": lambda: RedisPubSubChannelLayer(hosts=[host()]),
    }


async def fan_out(layer, group: str, rounds: int, *, pace: bool) -> list[float]:
    channels = [await layer.new_channel() for _ in range(RECEIVERS)]
    for channel in channels:
        await layer.group_add(group, channel)
    await asyncio.sleep(0.2)
    arrivals: list[list[float]] = [[] for _ in range(rounds)]

    async def drain(channel):
        for _ in range(rounds):
            message = await layer.receive(channel)
            arrivals[message["i"]].append(time.perf_counter())

    drains = [asyncio.create_task(drain(c)) for c in channels]
    sent = []
    for i in range(rounds):
        sent.append(time.perf_counter())
        await layer.group_send(group, {"type": "chat.message", "i": i, "body": "x" * 200})
        if pace:
            await asyncio.sleep(0.002)
    await asyncio.wait_for(asyncio.gather(*drains), timeout=120)
    for channel in channels:
        await layer.group_discard(group, channel)
    return [(max(arrivals[i]) - sent[i]) * 1000 for i in range(rounds)]


async def one_to_one(layer, rounds: int) -> list[float]:
    channel = await layer.new_channel()
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        await layer.send(channel, {"type": "x", "i": i})
        await layer.receive(channel)
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


async def measure(name: str, make) -> dict:
    layer = make()
    await layer.flush()
    latency = await fan_out(layer, f"bench.lat.{name}", LATENCY_ROUNDS, pace=True)
    start = time.perf_counter()
    await fan_out(layer, f"bench.tput.{name}", THROUGHPUT_MESSAGES, pace=False)
    throughput = THROUGHPUT_MESSAGES / (time.perf_counter() - start)
    direct = await one_to_one(layer, LATENCY_ROUNDS)
    await layer.flush()
    return {
        "fan-out p50 ms": statistics.median(latency),
        "fan-out p95 ms": pct(latency, 95),
        "fan-out p99 ms": pct(latency, 99),
        "group_send/s (12 receivers)": throughput,
        "send+receive p50 ms": statistics.median(direct),
    }


async def main(out: Path | None = None) -> None:
    results = {name: await measure(name, make) for name, make in layers().items()}
    if out:
        import json

        out.write_text(
            json.dumps({k: {n: results[n][k] for n in results} for k in results["core"]})
        )
    keys = list(results["core"])
    print(f"{'metric':32} {'core':>10} {'pubsub':>10} {'core/pubsub':>12}")
    for key in keys:
        core, pubsub = results["core"][key], results["pubsub"][key]
        print(f"{key:32} {core:10.2f} {pubsub:10.2f} {core / pubsub:12.2f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers here (bench/run.py)")
    asyncio.run(main(parser.parse_args().json))
