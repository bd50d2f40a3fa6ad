"""The load generator: one process of its own (no Django), driving real WebSocket clients.

Run by bench/run.py as ``python -m bench.loadgen SPEC.json``. The spec names the server kind
(``stack``: the room protocol of docs/protocol.md; ``stock``: the Channels tutorial's
``{"message": ...}``; ``raw``: plain text echoed to the room), the rooms (each with its
members' session keys) and the mode:

- ``fanout``: connect every member, then send at the given aggregate rates, one step after
  another, round-robin over rooms and members so each member sends at ``rate / members``;
  ``search`` instead raises the rate step by step to the highest that passes, then holds it.
- ``idle``: connect every member and stay quiet (server memory and CPU per idle connection).
- ``storm``: messages flow while every client drops at once and reconnects with ``resume``.
- ``http``: concurrent GETs of pages (thread per client, keep-alive), closed loop or paced.

It prints one JSON object per line: ``{"event": ...}`` marks (the runner samples the server's
CPU and memory at them) and, last, ``{"event": "result", ...}``. Latency is send-to-every-member:
from the moment a member sends until the last of the room's members has the message (its own
sender's copy included), on this process's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

try:
    import orjson

    def dumps(value) -> str:
        return orjson.dumps(value).decode()

    loads = orjson.loads
except ImportError:  # pragma: no cover -- orjson is a pinned dependency
    import json

    dumps = json.dumps
    loads = json.loads

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

BODY = (
    "Thinking of everyone here tonight; the walk by the river helped a little today. "
    "Thank you for listening. #"
)


def emit(event: str, **fields) -> None:
    sys.stdout.write(dumps({"event": event, "t": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Client:
    """One member's socket in one room."""

    def __init__(self, gen: Generator, room: int, member: int, session_key: str | None):
        self.gen, self.room, self.member, self.session_key = gen, room, member, session_key
        self.ws = None
        self.seqs: set[int] = set()  # stack: every seq received (live or by resume)
        self.last_seq = 0
        self.duplicates = 0
        self.reader: asyncio.Task | None = None
        self.resumed = asyncio.Event()
        self.resumed_or_live = True  # storm: may send (connected, and resumed after a drop)
        self.connects = 0

    @property
    def url(self) -> str:
        return f"{self.gen.base}/ws/groups/{self.gen.rooms[self.room]['slug']}/"

    async def open(self) -> None:
        headers = {}
        if self.session_key:
            headers["Cookie"] = f"sessionid={self.session_key}"
        self.ws = await connect(
            self.url,
            origin=self.gen.origin,
            additional_headers=headers,
            open_timeout=30,
            max_queue=None,
            ping_interval=None,  # a browser doesn't ping either; idle means idle
        )
        self.connects += 1
        self.reader = asyncio.create_task(self.read(self.ws))

    async def read(self, ws) -> None:
        try:
            async for raw in ws:
                self.gen.on_frame(self, raw)
        except (WebSocketException, OSError):
            pass

    async def send(self, text: str) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(text)
        except (WebSocketException, OSError):
            return False
        return True

    async def drop(self) -> None:
        """Lose the connection the way a network blip does: no closing handshake."""
        ws, self.ws = self.ws, None
        if ws is not None:
            ws.transport.abort()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 5)
            except (TimeoutError, WebSocketException, OSError):
                ws.transport.abort()
        if self.reader is not None:
            self.reader.cancel()


class Generator:
    def __init__(self, spec: dict):
        self.spec = spec
        self.kind = spec["kind"]
        self.base = spec["url"].rstrip("/")
        self.origin = spec["origin"]
        self.rooms = spec["rooms"]
        self.clients = [
            Client(self, r, m, key)
            for r, room in enumerate(self.rooms)
            for m, key in enumerate(room["sessions"])
        ]
        self.room_clients: dict[int, list[Client]] = defaultdict(list)
        for client in self.clients:
            self.room_clients[client.room].append(client)
        # Round-robin order: consecutive sends go to different rooms, and each member sends
        # once per len(order) sends.
        self.order = sorted(self.clients, key=lambda c: (c.member, c.room))
        self.counter = 0
        # message id -> [sent at, room, receivers still missing]
        self.pending: dict[str, list] = {}
        self.latencies: list[float] = []
        self.refused: Counter = Counter()
        self.errors: Counter = Counter()
        self.acked = 0
        self.late = 0  # receipts of messages already complete or unknown (stack: resumes)

    # --- Frames ---------------------------------------------------------------------------------

    def frame_for(self, client: Client, mid: str) -> str:
        if self.kind == "stack":
            return dumps({"type": "send", "client_id": mid, "body": BODY + mid[:8]})
        if self.kind == "stock":
            return dumps({"message": f"{mid} {BODY}"})
        return f"{mid} {BODY}"

    def on_frame(self, client: Client, raw) -> None:
        now = time.perf_counter()
        if self.kind == "stack":
            frame = loads(raw)
            kind = frame.get("type")
            if kind == "message":
                seq = frame["seq"]
                if seq in client.seqs:
                    client.duplicates += 1
                    return
                client.seqs.add(seq)
                client.last_seq = max(client.last_seq, seq)
                self.received(frame.get("client_id"), now)
            elif kind == "ack":
                self.acked += 1
            elif kind == "resumed":
                client.last_seq = max(client.last_seq, frame["latest"])
                client.resumed.set()
            elif kind == "error":
                code = frame.get("code", "?")
                self.errors[code] += 1
                mid = frame.get("client_id")
                if mid in self.pending:
                    del self.pending[mid]
                    self.refused[code] += 1
            return
        text = loads(raw)["message"] if self.kind == "stock" else raw
        self.received(text.split(" ", 1)[0], now)

    def received(self, mid, now: float) -> None:
        entry = self.pending.get(mid)
        if entry is None:
            self.late += 1
            return
        entry[2] -= 1
        if entry[2] <= 0:
            self.latencies.append((now - entry[0]) * 1000)
            del self.pending[mid]

    async def send_one(self, client: Client) -> bool:
        self.counter += 1
        mid = str(uuid.uuid4()) if self.kind == "stack" else str(self.counter)
        receivers = sum(1 for c in self.room_clients[client.room] if c.ws is not None)
        self.pending[mid] = [time.perf_counter(), client.room, receivers]
        if not await client.send(self.frame_for(client, mid)):
            del self.pending[mid]
            return False
        return True

    # --- Connecting ---------------------------------------------------------------------------

    async def connect_all(self, clients: list[Client], *, parallel: int = 50) -> dict:
        semaphore = asyncio.Semaphore(parallel)
        failures: Counter = Counter()
        times: list[float] = []

        async def one(client: Client) -> None:
            async with semaphore:
                start = time.perf_counter()
                try:
                    await client.open()
                except InvalidStatus as error:
                    failures[f"http {error.response.status_code}"] += 1
                    return
                except (TimeoutError, OSError, WebSocketException) as error:
                    failures[type(error).__name__] += 1
                    return
                times.append((time.perf_counter() - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in clients))
        return {
            "connected": len(times),
            "failed": dict(failures),
            "seconds": round(time.perf_counter() - started, 2),
            "handshake_p50_ms": percentile(times, 0.5),
            "handshake_p99_ms": percentile(times, 0.99),
        }

    # --- Sending at a rate ------------------------------------------------------------------------

    def reset_step(self) -> None:
        self.pending.clear()
        self.latencies = []
        self.refused = Counter()
        self.errors = Counter()
        self.acked = 0
        self.late = 0

    async def run_rate(self, rate: float, seconds: float, drain: float) -> dict:
        """Send at ``rate`` per second for ``seconds``, then wait up to ``drain`` seconds for
        every message to reach every member. Returns the step's numbers."""
        self.reset_step()
        senders = [c for c in self.order if c.ws is not None]
        if not senders:
            raise RuntimeError("no client is connected")
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = attempted = 0
        i = 0
        while True:
            elapsed = loop.time() - start
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) + 1
            while attempted < due:
                client = senders[i % len(senders)]
                i += 1
                attempted += 1
                if await self.send_one(client):
                    sent += 1
            await asyncio.sleep(0.004)
        send_seconds = loop.time() - start
        deadline = loop.time() + drain
        while self.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        incomplete = len(self.pending)
        missing = sum(entry[2] for entry in self.pending.values())
        lat = self.latencies
        return {
            "rate": rate,
            "seconds": round(send_seconds, 2),
            "sent": sent,
            "sent_per_s": round(sent / send_seconds, 1),
            "complete": len(lat),
            "refused": dict(self.refused),
            "errors": dict(self.errors),
            "acked": self.acked if self.kind == "stack" else None,
            "incomplete": incomplete,
            "missing_deliveries": missing,
            "p50_ms": percentile(lat, 0.5),
            "p99_ms": percentile(lat, 0.99),
            "max_ms": max(lat) if lat else None,
            "mean_ms": statistics.fmean(lat) if lat else None,
        }

    def passed(self, step: dict, p99_limit: float) -> bool:
        return (
            step["incomplete"] == 0
            and not step["refused"]
            and step["complete"] > 0
            and step["p99_ms"] is not None
            and step["p99_ms"] <= p99_limit
            and step["sent_per_s"] >= 0.9 * step["rate"]
        )

    async def search(self, cfg: dict) -> dict:
        """Raise the rate until a step fails, narrow the bracket, then hold the best rate.

        A step passes with every message delivered to every member, nothing refused, p99 at or
        under the limit, and the generator keeping up with the rate (at least 90% of it)."""
        rate, factor = cfg["start"], cfg["factor"]
        limit = cfg["p99_limit_ms"]
        steps, best, worst = [], 0.0, None
        deadline = time.monotonic() + cfg["budget_seconds"]

        async def step(r: float, seconds: float) -> dict:
            emit("step_start", rate=r)
            result = await self.run_rate(r, seconds, cfg["drain"])
            result["passed"] = self.passed(result, limit)
            emit("step_end", rate=r)
            steps.append(result)
            await asyncio.sleep(cfg["gap"])
            return result

        retried = False
        while rate <= cfg["max"] and time.monotonic() < deadline:
            result = await step(rate, cfg["step_seconds"])
            if not result["passed"] and not retried:
                # Once per search, a failed step is tried again before it counts: on a shared
                # machine one burst from elsewhere must not halve the answer.
                retried = True
                result = await step(rate, cfg["step_seconds"])
            if not result["passed"]:
                worst = rate
                break
            best = rate
            rate = round(rate * factor)
        for _ in range(cfg["bisect"]):
            if worst is None or time.monotonic() > deadline:
                break
            middle = round((best + worst) / 2) if best else round(worst / 2)
            if middle in (best, worst):
                break
            result = await step(middle, cfg["step_seconds"])
            if result["passed"]:
                best = middle
            else:
                worst = middle
        # A 4-second step shows what a server does briefly; a minute asks more (the stack
        # passed a step at 286 messages/s and broke within the minute there). Every server is
        # held at the same share of its best step.
        best = round(best * cfg.get("hold_fraction", 1.0))
        hold = None
        # A second hold (20% lower) only if it ends before the run's time is up (wall clock:
        # the runner's deadline).
        holds_until = cfg.get("holds_until") or float("inf")
        for attempt in range(cfg.get("hold_attempts", 2)):
            if not best:
                break
            if attempt and time.time() + cfg["hold_seconds"] + cfg["drain"] > holds_until:
                emit("hold_skipped", rate=best)
                break
            emit("hold_start", rate=best)
            hold = await self.run_rate(best, cfg["hold_seconds"], cfg["drain"])
            hold["passed"] = self.passed(hold, limit)
            emit("hold_end", rate=best, passed=hold["passed"])
            if hold["passed"]:
                break
            await asyncio.sleep(cfg["gap"])
            best = round(best * 0.8)
        return {
            "steps": steps,
            "best": best if hold and hold["passed"] else 0,
            "hold": hold,
            # No step failed before the budget ran out: the server's limit is higher than this
            # search shows, and a ratio against it is a bound, not a measurement.
            "capped": worst is None,
        }

    # --- Modes ---------------------------------------------------------------------------------

    async def fanout(self) -> dict:
        connected = await self.connect_all(self.clients)
        emit("connected", **connected)
        await asyncio.sleep(self.spec.get("settle", 1.0))
        if self.spec.get("warmup"):
            # Each server process compiles its matchers and fills its caches on first use; that
            # is start-up, not the steady state measured here.
            warm = self.spec["warmup"]
            await self.run_rate(warm["rate"], warm["seconds"], warm.get("drain", 5))
            await asyncio.sleep(warm.get("pause", 1.0))
        steps = []
        if "search" in self.spec:
            emit("measure_start")
            found = await self.search(self.spec["search"])
            emit("measure_end")
            steps = found
        else:
            for step in self.spec["steps"]:
                emit("measure_start", rate=step["rate"])
                result = await self.run_rate(step["rate"], step["seconds"], step["drain"])
                emit("measure_end", rate=step["rate"])
                steps.append(result)
        await asyncio.sleep(self.spec.get("quiesce", 0.5))
        return {"connect": connected, "steps": steps, "clients": self.client_report()}

    async def idle(self) -> dict:
        emit("before_connect")
        connected = await self.connect_all(self.clients, parallel=self.spec.get("parallel", 50))
        emit("connected", **connected)
        await asyncio.sleep(self.spec.get("settle", 5))
        emit("idle_start")
        await asyncio.sleep(self.spec.get("idle_seconds", 10))
        emit("idle_end")
        open_now = sum(1 for c in self.clients if c.ws is not None and c.ws.close_code is None)
        await asyncio.gather(*(c.close() for c in self.clients))
        return {"connect": connected, "open_at_end": open_now}

    async def storm(self) -> dict:
        cfg = self.spec["storm"]
        connected = await self.connect_all(self.clients)
        emit("connected", **connected)
        await asyncio.sleep(self.spec.get("settle", 1.0))
        self.reset_step()
        stop_sending = asyncio.Event()

        async def sender() -> None:
            loop = asyncio.get_running_loop()
            start, attempted, i = loop.time(), 0, 0
            while not stop_sending.is_set():
                due = int((loop.time() - start) * cfg["rate"]) + 1
                while attempted < due:
                    client = self.order[i % len(self.order)]
                    i += 1
                    attempted += 1
                    if client.ws is not None and client.resumed_or_live:
                        await self.send_one(client)
                await asyncio.sleep(0.01)

        for client in self.clients:
            client.resumed_or_live = True
        sending = asyncio.create_task(sender())
        await asyncio.sleep(cfg["before"])
        emit("storm_start")
        # Everyone drops at once, as when a load balancer or the network blinks.
        for client in self.clients:
            client.resumed_or_live = False
            client.resumed.clear()
        await asyncio.gather(*(c.drop() for c in self.clients))
        failures: Counter = Counter()
        resume_times: list[float] = []
        storm_started = time.perf_counter()

        async def come_back(client: Client) -> None:
            await asyncio.sleep(random.uniform(0, cfg["jitter"]))
            delay = 0.2
            while time.perf_counter() - storm_started < cfg["give_up"]:
                try:
                    await client.open()
                except InvalidStatus as error:
                    failures[f"http {error.response.status_code}"] += 1
                except (TimeoutError, OSError, WebSocketException) as error:
                    failures[type(error).__name__] += 1
                else:
                    await client.send(dumps({"type": "resume", "after": client.last_seq}))
                    try:
                        await asyncio.wait_for(client.resumed.wait(), cfg["give_up"])
                    except TimeoutError:
                        failures["no resumed frame"] += 1
                        await client.drop()
                        continue
                    client.resumed_or_live = True
                    resume_times.append(time.perf_counter() - storm_started)
                    return
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 3.0)

        await asyncio.gather(*(come_back(c) for c in self.clients))
        emit("storm_end")
        await asyncio.sleep(cfg["after"])
        stop_sending.set()
        await sending
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg["drain"]
        while self.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        # A final resume from everyone: whatever the server still owes each client arrives
        # now. A client whose connection the server closed after it came back (on a slow
        # machine, uvicorn's keepalive ping can time out mid-storm: close code 1011) opens a
        # new one first, as room.js does on any close; they are counted in ``reopened``.
        # Waited for as long as answers keep coming, and 10 s past the last one. (Waited for
        # one by one, 10 s each, a few dozen unanswered clients took ten minutes.)
        reopened: Counter = Counter()

        async def ask(client: Client) -> None:
            ws = client.ws
            if ws is None or ws.close_code is not None:
                reopened[str(ws.close_code if ws is not None else "gone")] += 1
                await client.drop()
                try:
                    await client.open()
                except (TimeoutError, OSError, WebSocketException):
                    failures["could not reopen for the final resume"] += 1
                    return
            client.resumed.clear()
            await client.send(dumps({"type": "resume", "after": client.last_seq}))
            await client.resumed.wait()

        waiting = {asyncio.create_task(ask(client)) for client in self.clients}
        while waiting:
            done, waiting = await asyncio.wait(waiting, timeout=10)
            if not done:
                break
        for late in waiting:
            late.cancel()
        if waiting:
            failures["final resume timed out"] += len(waiting)
        return {
            "connect": connected,
            "clients_total": len(self.clients),
            "resumed": len(resume_times),
            "storm_seconds": round(max(resume_times), 2) if resume_times else None,
            "resume_p50_s": percentile(resume_times, 0.5),
            "failures": dict(failures),
            "reopened": dict(reopened),
            "errors": dict(self.errors),
            "refused": dict(self.refused),
            "clients": self.client_report(),
        }

    def client_report(self) -> list[dict] | None:
        if self.kind != "stack":
            return None
        return [
            {
                "room": c.room,
                "member": c.member,
                "seqs": sorted(c.seqs),
                "duplicates": c.duplicates,
            }
            for c in self.clients
        ]


def http_load(spec: dict) -> dict:
    """``clients`` threads, each with its own keep-alive connection, GET ``paths`` in turn for
    ``seconds``; ``pace``: seconds between one client's requests (0: back to back)."""
    host, port = spec["host"], spec["port"]
    stop = time.monotonic() + spec["seconds"]
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        cookie = spec["cookies"][index % len(spec["cookies"])]
        paths = spec["paths"]
        if spec.get("visits"):  # each client its own member and page: [[path, cookie], ...]
            path, cookie = spec["visits"][index % len(spec["visits"])]
            paths = [path]
        headers = {"Cookie": f"sessionid={cookie}", "X-Forwarded-Proto": "https"}
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        n = index
        if spec.get("pace"):
            # People don't click in step: each paced client starts at its own moment within
            # the first interval, so the load is a steady stream rather than 50 requests
            # arriving together once a second.
            time.sleep(spec["pace"] * index / spec["clients"])
        while time.monotonic() < stop:
            path = paths[n % len(paths)]
            n += 1
            began = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                status = 0
            took = (time.perf_counter() - began) * 1000
            mine.append((path, status, took))
            if spec.get("pace"):
                time.sleep(max(0.0, spec["pace"] - took / 1000))
        connection.close()
        with lock:
            results.extend(mine)

    emit("measure_start")
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(spec["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    emit("measure_end")
    out = {}
    # Each page on its own, and all of them together ("*").
    for path in [*sorted({p for p, _s, _t in results}), "*"]:
        times = [t for p, s, t in results if path in (p, "*") and s == 200]
        statuses = Counter(s for p, s, _t in results if path in (p, "*"))
        out[path] = {
            "requests": sum(statuses.values()),
            "per_s": round(sum(statuses.values()) / seconds, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "p50_ms": percentile(times, 0.5),
            "p95_ms": percentile(times, 0.95),
            "max_ms": max(times) if times else None,
        }
    return {"paths": out, "seconds": round(seconds, 2)}


async def main(spec: dict) -> dict:
    mode = spec["mode"]
    gen = Generator(spec)
    if mode == "fanout":
        return await gen.fanout()
    if mode == "idle":
        return await gen.idle()
    if mode == "storm":
        return await gen.storm()
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    spec = loads(Path(sys.argv[1]).read_bytes())
    if spec["mode"] == "http":
        result = http_load(spec)
    else:
        try:
            import uvloop
        except ImportError:  # pragma: no cover
            result = asyncio.run(main(spec))
        else:
            result = uvloop.run(main(spec))
    Path(sys.argv[2]).write_bytes(dumps(result).encode())
    emit("result")
