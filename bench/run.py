"""The load harness: ``make bench`` (``python -m bench.run``), or ``--quick`` for a smoke run.

Measures, never asserts. In one run, on one machine, side by side:

- the full stack: the Procfile's ``web`` line as production runs it (``DEBUG=false``, uvicorn
  with ``WEB_CONCURRENCY`` workers, default 2), on PostgreSQL and Redis, every member a real
  signed-in session of a member who joined the group;
- baseline ``stock``: the Channels tutorial's consumer on ``RedisChannelLayer``, no storage
  (bench/baselines/stock_channels.py), same uvicorn command and worker count;
- baseline ``raw``: a ``websockets`` broadcast server with in-memory rooms, one process
  (bench/baselines/raw_websockets.py).

The load comes from bench/loadgen.py, a separate process. Scenarios:
(a) fan-out latency at 100 messages/s into 12-member rooms; (b) the highest rate sustained with
zero loss and p99 under 100 ms (held 60 s); (c) idle connections: server memory per connection
and idle CPU; (d) a reconnect storm with resume; (e) HTTP: the room page and the directory under
50 concurrent clients; (f) the moderation matcher per message (bench/matcher.py); (g) 10,000
reminders due in one minute (bench/reminders.py); and the channel layers compared
(bench/channel_layers.py).

Loss on the full stack is checked against the database: every member must end with every
stored ``seq`` of its room. It writes ``results.json`` and ``results.md`` to ``--out``
(default bench/results/) and prints the table.

By default it makes a fresh database beside ``DATABASE_URL``'s (``<name>_bench``), migrates
it and drops it at the end; ``--database-url`` runs against an existing migrated one instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MEMBERS_PER_ROOM = 12
# The chat's own limit is 10 posts per 10 s per member and room: spread the rate so each member
# sends at most 0.8 a second.
MEMBER_RATE = 0.8

FULL = {
    "a": {"rooms": 12, "rate": 100, "seconds": 10, "drain": 5},
    "b": {
        "rooms": 167,
        "step_seconds": 4,
        "hold_seconds": 60,
        "factor": 1.3,
        "bisect": 1,
        "max": 1600,
        "budget_seconds": 25,
        "hold_attempts": 1,
    },
    # (c) and (d) at a fifth of the issue's sizes by default, so that the whole run fits in 10
    # minutes on the 2-core machine (handshakes are the slow part); --full-size: 5,004 and 2,004.
    "c": {"rooms": 84, "settle": 5, "idle_seconds": 10, "pause": 2},
    "d": {"rooms": 84, "rate": 100, "before": 3, "jitter": 5, "give_up": 30, "after": 3},
    "e": {"clients": 50, "seconds": 6, "pace": 1.0},
    "f": {"rounds": 10, "long": 40},
    "g": {"count": 10_000, "max_seconds": 75},
    "layers": False,  # --layers: bench/channel_layers.py too (about 20 s)
    # Each server process compiles its matchers and fills its caches on first use.
    "warmup": {"rate": 20, "seconds": 5},
    "settle": 1.0,
}
QUICK = {
    "a": {"rooms": 2, "rate": 10, "seconds": 2, "drain": 15},
    "b": {
        "rooms": 2,
        "step_seconds": 1,
        "hold_seconds": 2,
        "factor": 2,
        "bisect": 0,
        "max": 20,
        "budget_seconds": 5,
        "hold_attempts": 1,
    },
    "c": {"rooms": 2, "settle": 0.5, "idle_seconds": 0.5, "pause": 0.2},
    "d": {"rooms": 2, "rate": 5, "before": 1, "jitter": 0.5, "give_up": 20, "after": 1},
    "e": {"clients": 4, "seconds": 1, "pace": None},
    "f": {"rounds": 1, "long": 2},
    "g": None,
    "layers": False,
    "warmup": {"rate": 5, "seconds": 1, "pause": 0.2},
    "settle": 0.2,
}
TARGETS = {
    "a_p50": 10,
    "a_p99": 50,
    "b_vs_stock": 2.0,
    "b_vs_raw": 0.25,
    "c_kb": 30,
    "e_p95": 50,
    "f_ms": 0.2,
    "g_seconds": 60,
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The database -------------------------------------------------------------------------------


def prepare_database(url: str | None) -> tuple[str, callable]:
    """A migrated database for the run and a function that drops it afterwards (or a no-op)."""
    if url:
        return url, lambda: None
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        import psycopg

        parsed = urlparse(base)
        name = (parsed.path.lstrip("/") or "community") + "_bench"
        admin = parsed._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        bench_url = parsed._replace(path=f"/{name}").geturl()

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    else:
        path = ROOT / ".local" / "bench.sqlite3"
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        bench_url = f"sqlite:///{path}"

        def drop() -> None:
            path.unlink(missing_ok=True)

    subprocess.run(
        [PYTHON, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": bench_url},
        check=True,
    )
    return bench_url, drop


def make_rooms(count: int, prefix: str) -> list[dict]:
    """``count`` open groups of 12 members who accepted the agreement, each member with a
    signed-in session (as ``login()`` leaves it). Bulk inserts: the same rows the services
    write, made fast."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from community.models import User
    from groups.models import AgreementVersion, Group, Membership

    now = timezone.now()
    groups = Group.objects.bulk_create(
        Group(
            name=f"Bench circle {prefix}{i}",
            slug=f"bench-{prefix}{i}",
            topic="relational",
            description="Synthetic.",
            agreement="We listen without fixing.",
            capacity=MEMBERS_PER_ROOM,
        )
        for i in range(count)
    )
    AgreementVersion.objects.bulk_create(
        AgreementVersion(group=g, version=1, text=g.agreement) for g in groups
    )
    unusable = make_password(None)  # they sign in by session, never by password
    users = User.objects.bulk_create(
        User(
            email=f"bench-{prefix}{i}@example.test",
            display_name=f"Bench {prefix}{i}",
            password=unusable,
        )
        for i in range(count * MEMBERS_PER_ROOM)
    )
    Membership.objects.bulk_create(
        Membership(
            group=groups[i // MEMBERS_PER_ROOM],
            user=user,
            role="facilitator" if i % MEMBERS_PER_ROOM == 0 else "member",
            agreement_version=1,
            agreement_accepted_at=now,
        )
        for i, user in enumerate(users)
    )
    store = SessionStore()
    expire = now + timedelta(days=1)
    sessions = []
    for user in users:
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(
            Session(session_key=key, session_data=store.encode(data), expire_date=expire)
        )
    Session.objects.bulk_create(sessions)
    return [
        {
            "slug": g.slug,
            "id": g.pk,
            "sessions": [
                s.session_key for s in sessions[i * MEMBERS_PER_ROOM : (i + 1) * MEMBERS_PER_ROOM]
            ],
        }
        for i, g in enumerate(groups)
    ]


def stored_seqs(rooms: list[dict], after: dict[int, int]) -> dict[int, set[int]]:
    from groups.models import Message

    out: dict[int, set[int]] = {r["id"]: set() for r in rooms}
    rows = Message.objects.filter(group_id__in=list(out)).values_list("group_id", "seq")
    for group_id, seq in rows:
        if seq > after.get(group_id, 0):
            out[group_id].add(seq)
    return out


def latest_seqs(rooms: list[dict]) -> dict[int, int]:
    from django.db.models import Max

    from groups.models import Message

    rows = (
        Message.objects.filter(group_id__in=[r["id"] for r in rooms])
        .values("group_id")
        .annotate(m=Max("seq"))
    )
    return {row["group_id"]: row["m"] for row in rows}


def check_loss(rooms: list[dict], clients: list[dict], after: dict[int, int]) -> dict:
    """Every client against its room's stored seqs (after ``after``): delivered, expected."""
    stored = stored_seqs(rooms, after)
    expected = delivered = unexpected = duplicates = 0
    short_clients = 0
    for client in clients:
        room = rooms[client["room"]]
        want = stored[room["id"]]
        got = {s for s in client["seqs"] if s > after.get(room["id"], 0)}
        expected += len(want)
        delivered += len(want & got)
        unexpected += len(got - want)
        duplicates += client["duplicates"]
        short_clients += bool(want - got)
    return {
        "stored": sum(len(v) for v in stored.values()),
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "unexpected": unexpected,
        "duplicates": duplicates,
        "clients_missing_any": short_clients,
    }


# --- Servers ------------------------------------------------------------------------------------


class Server:
    """A server process tree: started, watched (CPU, memory) and stopped."""

    def __init__(
        self, name: str, command: str, env: dict, port: int, log_path: Path, cwd: Path = ROOT
    ):
        self.name, self.command, self.env, self.port = name, command, env, port
        self.log_path, self.cwd = log_path, cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        out = open(self.log_path, "ab")  # noqa: SIM115 -- closed with the process
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, *, http: bool) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                if http:
                    request = urllib.request.Request(
                        f"http://localhost:{self.port}/help/",
                        headers={"X-Forwarded-Proto": "https"},
                    )
                    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 -- our loopback server
                        if response.status == 200:
                            # Every worker answers only once each has imported the app; give
                            # the others a moment after the first.
                            time.sleep(1.0)
                            return
                else:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; see {self.log_path}")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def snapshot(self) -> dict:
        cpu = rss = 0.0
        processes = 0
        for proc in self.tree():
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
                processes += 1
            except psutil.NoSuchProcess:
                continue
        return {"cpu": cpu, "rss": rss, "processes": processes, "wall": time.monotonic()}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def procfile_web(root: Path = ROOT) -> str:
    for line in (root / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("Procfile has no web line")


def start_servers(
    kinds: list[str], *, db_url: str, workers: int, work: Path, before: Path | None = None
) -> dict:
    static_root = work / "static"
    base_env = {
        **os.environ,
        "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "STATIC_ROOT": str(static_root),
        "WEB_CONCURRENCY": str(workers),
        "HOST": "127.0.0.1",
    }
    base_env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=base_env,
        check=True,
    )
    web = procfile_web()
    servers = {}
    for kind in kinds:
        port = free_port()
        env = {**base_env, "PORT": str(port)}
        cwd = ROOT
        if kind == "stack":
            command = web
        elif kind == "before":
            # Another checkout of the project (``--before``), served the way its Procfile says.
            command, cwd = procfile_web(before), before
        elif kind == "stock":
            command = web.replace(
                "community.asgi:application", "bench.baselines.stock_channels:application"
            )
            env["DJANGO_SETTINGS_MODULE"] = "bench.baselines.stock_settings"
        else:
            command = f"{shlex.quote(PYTHON)} -m bench.baselines.raw_websockets --port {port}"
        servers[kind] = Server(kind, command, env, port, work / f"{kind}.log", cwd).start()
    for kind, server in servers.items():
        server.wait_ready(http=kind in ("stack", "stock"))
    return servers


# --- Profiles ----------------------------------------------------------------------------------------


class Profiler:
    """py-spy on every process of a server while a measurement runs (``--profile``): collapsed
    stacks per process, and a summary of where the time went (summarise_profile)."""

    def __init__(self, server: Server, out: Path, label: str):
        self.server, self.out, self.label = server, out, label
        self.spies: list[tuple[subprocess.Popen, Path]] = []

    def start(self) -> None:
        spy = Path(PYTHON).with_name("py-spy")
        for proc in self.server.tree():
            if "python" not in " ".join(proc.cmdline()[:1]).lower() and proc.name() != "python":
                continue
            path = self.out / f"profile-{self.label}-{proc.pid}.txt"
            command = [str(spy), "record", "--pid", str(proc.pid), "--format", "raw",
                       "--output", str(path), "--rate", "200", "--nonblocking", "--gil"]  # fmt: skip
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.spies.append((process, path))

    def stop(self) -> list[Path]:
        for process, _path in self.spies:
            process.send_signal(2)  # SIGINT: py-spy writes what it recorded and exits
        for process, _path in self.spies:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        return [path for _p, path in self.spies if path.exists()]


def summarise_profile(paths: list[Path], top: int = 40) -> str:
    """Self and inclusive sample shares per function over all processes' collapsed stacks,
    leaving out samples where a thread only waited (idle event loop, empty thread pool)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    idle = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py",
            "poll (selectors.py", "run_forever (asyncio", "_run_once (asyncio/base_events.py:1")  # fmt: skip
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not frames or any(frames[-1].startswith(i) for i in idle):
                continue
            n = int(count)
            total += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + n
    lines = [f"busy samples: {total}", "", "inclusive (share of busy samples):"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{n / total:6.1%}  {frame}")
    lines += ["", "self:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{n / total:6.1%}  {frame}")
    return "\n".join(lines) + "\n"


PROFILE: dict = {"out": None}


# --- Running the load generator -------------------------------------------------------------------


def run_loadgen(spec: dict, server: Server | None, work: Path, timeout: float) -> tuple[dict, list]:
    """Run bench/loadgen.py on ``spec``; snapshot the server at each event it prints."""
    spec_path = work / f"spec-{time.monotonic_ns()}.json"
    out_path = spec_path.with_suffix(".out.json")
    spec_path.write_text(json.dumps(spec))
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.loadgen", str(spec_path), str(out_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(work / "loadgen.log", "ab"),  # noqa: SIM115 -- closed with the process
        text=True,
    )
    gen = psutil.Process(process.pid)
    events = []
    deadline = time.monotonic() + timeout
    profiler = None
    for line in process.stdout:
        event = json.loads(line)
        event["server"] = server.snapshot() if server else None
        if PROFILE["out"] and server and event["event"] in ("measure_start", "hold_start"):
            profiler = Profiler(
                server, PROFILE["out"], f"{server.name}-{spec['mode']}-{len(events)}"
            )
            profiler.start()
        if profiler and event["event"] in ("measure_end", "hold_end"):
            paths = profiler.stop()
            summary = summarise_profile(paths)
            (PROFILE["out"] / f"summary-{profiler.label}.txt").write_text(summary)
            profiler = None
        try:
            times = gen.cpu_times()
            event["loadgen_cpu"] = times.user + times.system
        except psutil.NoSuchProcess:
            event["loadgen_cpu"] = None
        events.append(event)
        if time.monotonic() > deadline:
            process.kill()
            break
    process.wait()
    if process.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"load generator failed ({process.returncode}); see {work}/loadgen.log")
    return json.loads(out_path.read_text()), events


def between(events: list, start: str, end: str, nth: int = 0) -> dict:
    """Server CPU (cores used), wall seconds and load generator CPU between two events."""
    starts = [e for e in events if e["event"] == start]
    ends = [e for e in events if e["event"] == end]
    a, b = starts[nth], ends[nth]
    wall = b["server"]["wall"] - a["server"]["wall"]
    return {
        "wall": wall,
        "server_cpu_s": b["server"]["cpu"] - a["server"]["cpu"],
        "server_cores": (b["server"]["cpu"] - a["server"]["cpu"]) / wall if wall else None,
        "loadgen_cores": (b["loadgen_cpu"] - a["loadgen_cpu"]) / wall if wall else None,
    }


WARMUP: dict = {}


def spec_for(kind: str, server: Server, rooms: list[dict], mode: str, **extra) -> dict:
    if mode == "fanout":
        extra.setdefault("warmup", WARMUP["warmup"])
        extra.setdefault("settle", WARMUP["settle"])
    return {
        "kind": "stack" if kind == "before" else kind,
        "mode": mode,
        "url": f"ws://localhost:{server.port}",
        "origin": f"http://localhost:{server.port}",
        "rooms": [{"slug": r["slug"], "sessions": r["sessions"]} for r in rooms],
        **extra,
    }


# --- Scenarios ------------------------------------------------------------------------------------


def scenario_a(servers, rooms, cfg, work) -> dict:
    out = {}
    for kind, server in servers.items():
        log(f"(a) {kind}: {cfg['rate']} messages/s for {cfg['seconds']} s")
        before = latest_seqs(rooms) if kind in ("stack", "before") else {}
        step = {"rate": cfg["rate"], "seconds": cfg["seconds"], "drain": cfg["drain"]}
        result, events = run_loadgen(
            spec_for(kind, server, rooms, "fanout", steps=[step]), server, work, 300
        )
        numbers = result["steps"][0]
        usage = between(events, "measure_start", "measure_end")
        numbers.update(usage)
        numbers["server_cpu_ms_per_msg"] = (
            usage["server_cpu_s"] * 1000 / numbers["sent"] if numbers["sent"] else None
        )
        numbers["connect"] = result["connect"]
        if kind in ("stack", "before"):
            numbers["loss"] = check_loss(rooms, result["clients"], before)
        out[kind] = numbers
        wait_until_idle(server)
    return out


def scenario_b(servers, all_rooms, cfg, work, calibration: dict) -> dict:
    out = {}
    for kind, server in servers.items():
        if kind == "before":
            continue  # the comparison with another checkout is (a)'s
        # Start the search near half of what (a)'s CPU per message predicts one core carries,
        # with rooms enough for three times that (each member sends at most 0.8 a second).
        known = calibration.get(kind) or {}
        per_msg = known.get("server_cpu_ms_per_msg") or 5.0
        # The generator's own CPU per message counts too: it shares the machine.
        gen_ms = (
            known["loadgen_cores"] * known["wall"] * 1000 / known["sent"]
            if known.get("sent") and known.get("loadgen_cores")
            else 0.0
        )
        predicted = 1000 / max(per_msg + gen_ms, 0.05)
        start = max(10, min(cfg["max"], round(predicted / 2, -1)))
        needed = math.ceil(min(cfg["max"], 3 * predicted) / (MEMBER_RATE * MEMBERS_PER_ROOM))
        rooms = all_rooms[: max(2, min(len(all_rooms), needed))]
        search = {
            "start": start,
            "factor": cfg["factor"],
            "max": cfg["max"],
            "step_seconds": cfg["step_seconds"],
            "hold_seconds": cfg["hold_seconds"],
            "bisect": cfg["bisect"],
            "drain": 3.0,
            "gap": 1.5,
            "p99_limit_ms": 100.0,
            "budget_seconds": cfg["budget_seconds"],
            "hold_attempts": cfg["hold_attempts"],
        }
        log(
            f"(b) {kind}: {len(rooms)} rooms, searching from {start} messages/s, holding the "
            f"best {cfg['hold_seconds']} s"
        )
        before = latest_seqs(rooms) if kind in ("stack", "before") else {}
        result, events = run_loadgen(
            spec_for(kind, server, rooms, "fanout", search=search), server, work, 900
        )
        found = result["steps"]
        numbers = {
            "best": found["best"],
            "steps": found["steps"],
            "hold": found["hold"],
            # The highest step rate with nothing lost, whatever its p99 (the delay criterion
            # is the one above; this one shows where messages start to go missing).
            "best_lossless": max(
                (x["rate"] for x in found["steps"] if x["incomplete"] == 0 and not x["refused"]),
                default=0,
            ),
        }
        holds = [e for e in events if e["event"] == "hold_end"]
        if holds:
            usage = between(events, "hold_start", "hold_end", nth=len(holds) - 1)
            numbers["hold_usage"] = usage
            if found["hold"] and found["hold"]["sent"]:
                numbers["server_cpu_ms_per_msg"] = (
                    usage["server_cpu_s"] * 1000 / found["hold"]["sent"]
                )
        numbers["connect"] = result["connect"]
        numbers["rooms"] = len(rooms)
        if kind in ("stack", "before"):
            numbers["loss"] = check_loss(rooms, result["clients"], before)
        out[kind] = numbers
        log(f"    best {found['best']} messages/s")
        wait_until_idle(server)
    return out


def scenario_c(servers, rooms, cfg, work) -> dict:
    out = {}
    for kind, server in servers.items():
        if kind == "before":
            continue
        log(f"(c) {kind}: {len(rooms) * MEMBERS_PER_ROOM} idle connections")
        spec = spec_for(
            kind, server, rooms, "idle", settle=cfg["settle"], idle_seconds=cfg["idle_seconds"]
        )
        result, events = run_loadgen(spec, server, work, 600)
        before = next(e for e in events if e["event"] == "before_connect")["server"]
        idle = next(e for e in events if e["event"] == "idle_start")["server"]
        connected = result["connect"]["connected"]
        usage = between(events, "idle_start", "idle_end")
        out[kind] = {
            "connections": connected,
            "failed": result["connect"]["failed"],
            "connect_seconds": result["connect"]["seconds"],
            "handshake_p50_ms": result["connect"]["handshake_p50_ms"],
            "handshake_p99_ms": result["connect"]["handshake_p99_ms"],
            "kb_per_connection": (idle["rss"] - before["rss"]) / 1024 / connected
            if connected
            else None,
            "idle_server_cores": usage["server_cores"],
            "open_at_end": result["open_at_end"],
        }
        wait_until_idle(server)  # the closed sockets' tidying up is not the next one's cost
    return out


def scenario_d(server, rooms, cfg, work) -> dict:
    log(f"(d) stack: {len(rooms) * MEMBERS_PER_ROOM} clients drop and reconnect with resume")
    before = latest_seqs(rooms)
    storm = {**cfg, "drain": 5.0}
    result, events = run_loadgen(
        spec_for("stack", server, rooms, "storm", storm=storm), server, work, 600
    )
    loss = check_loss(rooms, result["clients"], before)
    usage = between(events, "storm_start", "storm_end")
    wait_until_idle(server)
    log_text = server.log_path.read_text(errors="replace")
    return {
        "clients": result["clients_total"],
        "resumed": result["resumed"],
        "storm_seconds": result["storm_seconds"],
        "resume_p50_s": result["resume_p50_s"],
        "failures": result["failures"],
        "http_5xx": sum(v for k, v in result["failures"].items() if k.startswith("http 5")),
        "failed_handshakes": sum(result["failures"].values()),
        "errors": result["errors"],
        "server_cores": usage["server_cores"],
        "server_errors_logged": log_text.count("Traceback"),
        "loss": loss,
    }


def scenario_e(server, rooms, cfg, work) -> dict:
    out = {}
    paths = {"room": f"/groups/{rooms[0]['slug']}/room/", "directory": "/groups/"}
    cookies = [s for r in rooms for s in r["sessions"][:1]]  # one member of each room
    runs = [("closed loop", 0)]
    if cfg["pace"]:
        runs.append((f"each client every {cfg['pace']:g} s", cfg["pace"]))
    for label, pace in runs:
        for name, path in paths.items():
            # The room page for each client's own room.
            if name == "room":
                specs_paths = [f"/groups/{r['slug']}/room/" for r in rooms]
            else:
                specs_paths = [path]
            log(f"(e) {name} page, {cfg['clients']} clients, {label}")
            spec = {
                "mode": "http",
                "host": "localhost",
                "port": server.port,
                "clients": cfg["clients"],
                "seconds": cfg["seconds"],
                "pace": pace,
                "paths": specs_paths if name == "directory" else specs_paths[:1],
                "cookies": cookies[:1] if name == "room" else cookies,
            }
            result, events = run_loadgen(spec, server, work, 300)
            merged = {"requests": 0, "per_s": 0.0, "statuses": {}}
            times_p50, times_p95, maxes = [], [], []
            for stats in result["paths"].values():
                merged["requests"] += stats["requests"]
                merged["per_s"] += stats["per_s"]
                for k, v in stats["statuses"].items():
                    merged["statuses"][k] = merged["statuses"].get(k, 0) + v
                times_p50.append(stats["p50_ms"] or 0)
                times_p95.append(stats["p95_ms"] or 0)
                maxes.append(stats["max_ms"] or 0)
            merged.update(
                p50_ms=statistics.median(times_p50),
                p95_ms=max(times_p95),
                max_ms=max(maxes),
                **between(events, "measure_start", "measure_end"),
            )
            out[f"{name}, {label}"] = merged
    return out


def wait_until_idle(server: Server, *, limit: float = 60.0) -> None:
    """Let a server finish what an overload left queued before the next measurement starts:
    until it uses under a tenth of a core for two seconds (or ``limit`` seconds pass)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.snapshot()
        time.sleep(2)
        after = server.snapshot()
        if (after["cpu"] - before["cpu"]) / (after["wall"] - before["wall"]) < 0.1:
            return
    log(f"    {server.name} still busy after {limit:.0f} s")


def run_script(args: list[str], work: Path, env: dict | None = None, timeout: float = 900) -> dict:
    out = work / f"script-{time.monotonic_ns()}.json"
    subprocess.run(
        [PYTHON, *args, "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
        timeout=timeout,
        stdout=open(work / "scripts.log", "ab"),  # noqa: SIM115 -- closed with the process
        stderr=subprocess.STDOUT,
    )
    return json.loads(out.read_text())


# --- Report ---------------------------------------------------------------------------------------


def fmt(value, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, int | float) and abs(value) >= 1000 and digits <= 1:
        return f"{value:,.0f}{unit}"
    return f"{value:.{digits}f}{unit}"


def ratio(a, b) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}"


def report(results: dict) -> str:
    meta = results["meta"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']}, {meta['mode']} mode: full stack with "
        f"{meta['workers']} uvicorn workers (the Procfile's web line, DEBUG=false), PostgreSQL "
        f"and Redis on the same machine; load from one separate generator process.",
        "",
        "| scenario | metric | full stack | stock Channels | raw websockets | stack ÷ stock | stack ÷ raw | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def row(
        scenario, metric, stack, stock=None, raw=None, target="", digits=1, unit="", ratios=True
    ):
        lines.append(
            f"| {scenario} | {metric} | {fmt(stack, digits, unit)} | {fmt(stock, digits, unit)} | "
            f"{fmt(raw, digits, unit)} | {ratio(stack, stock) if ratios else '-'} | "
            f"{ratio(stack, raw) if ratios else '-'} | {target} |"
        )

    a = results.get("a")
    if a:
        s, k, r = (a.get(x, {}) for x in ("stack", "stock", "raw"))
        rate = s.get("rate") or k.get("rate")
        row(
            f"(a) {rate}/s",
            "send-to-all p50 ms",
            s.get("p50_ms"),
            k.get("p50_ms"),
            r.get("p50_ms"),
            f"< {TARGETS['a_p50']} ms",
            2,
        )
        row(
            f"(a) {rate}/s",
            "send-to-all p99 ms",
            s.get("p99_ms"),
            k.get("p99_ms"),
            r.get("p99_ms"),
            f"< {TARGETS['a_p99']} ms",
            2,
        )
        row(
            f"(a) {rate}/s",
            "send-to-all max ms",
            s.get("max_ms"),
            k.get("max_ms"),
            r.get("max_ms"),
            "",
            1,
        )
        row(
            f"(a) {rate}/s",
            "server CPU ms per message",
            s.get("server_cpu_ms_per_msg"),
            k.get("server_cpu_ms_per_msg"),
            r.get("server_cpu_ms_per_msg"),
            "",
            2,
        )
        row(
            f"(a) {rate}/s",
            "messages lost",
            s.get("incomplete"),
            k.get("incomplete"),
            r.get("incomplete"),
            "0",
            0,
            ratios=False,
        )
        if a.get("before"):
            old = a["before"]
            lines.append(
                f"| (a) {rate}/s | the stack before this round of changes (--before): p50 / p99 "
                f"ms, CPU ms per message | {fmt(old.get('p50_ms'))} / {fmt(old.get('p99_ms'))}, "
                f"{fmt(old.get('server_cpu_ms_per_msg'), 2)} | | | | | |"
            )
        if s.get("loss"):
            loss = s["loss"]
            lines.append(
                f"| (a) {rate}/s | stack: delivered / expected (stored seqs) | "
                f"{loss['delivered']:,} / {loss['expected']:,} | | | | | all |"
            )
    b = results.get("b")
    if b:
        s, k, r = (b.get(x, {}) for x in ("stack", "stock", "raw"))
        hold = next((x["hold"]["seconds"] for x in (s, k, r) if x.get("hold")), None)
        row(
            "(b) zero loss",
            f"highest rate held {fmt(hold, 0)} s, p99 < 100 ms (messages/s)",
            s.get("best"),
            k.get("best"),
            r.get("best"),
            f"≥ {TARGETS['b_vs_stock']:g}x stock, ≥ {TARGETS['b_vs_raw']:.0%} raw",
            0,
        )
        row(
            "(b) zero loss",
            "highest step rate with nothing lost, any p99 (messages/s)",
            *(x.get("best_lossless") for x in (s, k, r)),
            "",
            0,
        )
        row(
            "(b) at that rate",
            "p99 ms",
            *(x.get("hold", {}) and x["hold"].get("p99_ms") for x in (s, k, r)),
            "",
            1,
        )
        row(
            "(b) at that rate",
            "server cores busy",
            *((x.get("hold_usage") or {}).get("server_cores") for x in (s, k, r)),
            "",
            2,
        )
        row(
            "(b) at that rate",
            "server CPU ms per message",
            *(x.get("server_cpu_ms_per_msg") for x in (s, k, r)),
            "",
            2,
        )
        if s.get("loss"):
            loss = s["loss"]
            lines.append(
                f"| (b) whole search | stack: delivered / expected (stored seqs) | "
                f"{loss['delivered']:,} / {loss['expected']:,} | | | | | all |"
            )
    c = results.get("c")
    if c:
        s, k, r = (c.get(x, {}) for x in ("stack", "stock", "raw"))
        n = s.get("connections") or k.get("connections")
        row(
            f"(c) {fmt(n, 0)} idle",
            "server memory KB per connection",
            s.get("kb_per_connection"),
            k.get("kb_per_connection"),
            r.get("kb_per_connection"),
            f"< {TARGETS['c_kb']} KB",
            1,
        )
        row(
            f"(c) {fmt(n, 0)} idle",
            "server cores busy while idle",
            s.get("idle_server_cores"),
            k.get("idle_server_cores"),
            r.get("idle_server_cores"),
            "",
            3,
        )
        row(
            f"(c) {fmt(n, 0)} idle",
            "handshake p99 ms",
            s.get("handshake_p99_ms"),
            k.get("handshake_p99_ms"),
            r.get("handshake_p99_ms"),
            "",
            0,
        )
        row(
            f"(c) {fmt(n, 0)} idle",
            "connections refused",
            sum(s.get("failed", {}).values()),
            sum(k.get("failed", {}).values()),
            sum(r.get("failed", {}).values()),
            "",
            0,
            ratios=False,
        )
    d = results.get("d")
    if d:
        lines.append(
            f"| (d) storm | {d['clients']:,} clients drop at once and resume | resumed "
            f"{d['resumed']:,} in {fmt(d['storm_seconds'])} s; 5xx {d['http_5xx']}, failed "
            f"handshakes {d['failed_handshakes']}, lost {d['loss']['lost']} of "
            f"{d['loss']['expected']:,} | | | | | ≤ 30 s, 0, 0, 0 |"
        )
    e = results.get("e")
    if e:
        for name, stats in e.items():
            target = f"p95 < {TARGETS['e_p95']} ms" if name.startswith("room") else ""
            lines.append(
                f"| (e) HTTP | {name}: p50 / p95 ms, requests/s | {fmt(stats['p50_ms'])} / "
                f"{fmt(stats['p95_ms'])}, {fmt(stats['per_s'])}/s | | | | | {target} |"
            )
    f = results.get("f")
    if f:
        for label, stats in f["rows"].items():
            lines.append(
                f"| (f) matcher | {label}: p50 / p99 µs | {fmt(stats['p50_us'])} / "
                f"{fmt(stats['p99_us'])} | | | | | {'< 200 µs' if label.startswith('labelled') else ''} |"
            )
    g = results.get("g")
    if g:
        lines.append(
            f"| (g) reminders | {g['count']:,} due in one minute: sent within 60 s of due / "
            f"all sent; duplicates | {g['on_time']:,} / {g['sent']:,} (last {fmt(g['first_due_to_last_sent'])} s "
            f"after the first was due); {g['duplicates']} | | | | | all within 60 s, 0 |"
        )
    layers = results.get("layers")
    if layers:
        for metric, values in layers.items():
            lines.append(
                f"| channel layer | {metric} | pub/sub {fmt(values['pubsub'], 2)} | core {fmt(values['core'], 2)} | | "
                f"{ratio(values['pubsub'], values['core'])} | | |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: smoke, not numbers")
    parser.add_argument("--scenarios", default="abcdefg", help="which of a-g to run")
    parser.add_argument("--servers", default="stack,stock,raw")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--database-url", help="an existing, migrated database to use")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every server process while measuring"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout of the project (say, the code before a change): served as a "
        "fourth server, 'before', for a side-by-side comparison (add it to --servers)",
    )
    parser.add_argument("--a-rate", type=int, help="(a)'s rate instead of 100 messages/s")
    parser.add_argument("--c-rooms", type=int, help="(c)'s rooms of 12")
    parser.add_argument(
        "--layers", action="store_true", help="also compare the two channels_redis layers"
    )
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="(c) with 5,004 idle connections and (d) with 2,004 clients (about 15 minutes here)",
    )
    args = parser.parse_args()
    if args.profile:
        PROFILE["out"] = args.out / "profiles"
        PROFILE["out"].mkdir(parents=True, exist_ok=True)
    cfg = QUICK if args.quick else FULL
    if args.full_size:
        cfg = {**cfg, "c": {**cfg["c"], "rooms": 417}, "d": {**cfg["d"], "rooms": 167}}
    if args.c_rooms:
        cfg = {**cfg, "c": {**cfg["c"], "rooms": args.c_rooms}}
    if args.a_rate:
        cfg = {**cfg, "a": {**cfg["a"], "rate": args.a_rate}}
    scenarios = set(args.scenarios)
    WARMUP.update(warmup=cfg["warmup"], settle=cfg["settle"])
    kinds = [k for k in args.servers.split(",") if k]
    started = time.monotonic()

    db_url, drop_database = prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = db_url
    # The sessions made here must sign in on the servers: one key for both.
    os.environ["SECRET_KEY"] = "bench-" + secrets.token_hex(32)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()

    results: dict = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.system()} {platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
            + (f", {platform.processor()}" if platform.processor() else ""),
            "mode": "quick" if args.quick else "full",
            "workers": args.workers,
            "database": urlparse(db_url).scheme,
        }
    }
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    servers: dict = {}
    try:
        sizes = {k: cfg[k]["rooms"] for k in "abcd" if k in scenarios and cfg.get(k)}
        rooms = {k: make_rooms(n, prefix=f"{k}{secrets.token_hex(2)}-") for k, n in sizes.items()}
        log(
            f"made {sum(sizes.values())} rooms of {MEMBERS_PER_ROOM} in {time.monotonic() - started:.0f} s"
        )
        if scenarios & set("abcde"):
            servers = start_servers(
                kinds, db_url=db_url, workers=args.workers, work=work, before=args.before
            )
        if "a" in scenarios:
            results["a"] = scenario_a(servers, rooms["a"], cfg["a"], work)
        # (c) before (b): a process's memory doesn't shrink after a busier scenario, so idle
        # connections are measured on servers that have held no more sockets than that yet.
        if "c" in scenarios:
            results["c"] = scenario_c(servers, rooms["c"], cfg["c"], work)
        if "b" in scenarios:
            results["b"] = scenario_b(servers, rooms["b"], cfg["b"], work, results.get("a", {}))
        if "d" in scenarios and "stack" in servers:
            results["d"] = scenario_d(servers["stack"], rooms["d"], cfg["d"], work)
        if "e" in scenarios and "stack" in servers:
            results["e"] = scenario_e(
                servers["stack"], rooms.get("a") or make_rooms(2, "e-"), cfg["e"], work
            )
        for server in servers.values():
            server.stop()
        servers = {}
        if "f" in scenarios:
            log("(f) matcher")
            results["f"] = run_script(
                ["bench/matcher.py", "--rounds", str(cfg["f"]["rounds"])], work
            )
        if "g" in scenarios and cfg.get("g"):
            log(f"(g) {cfg['g']['count']:,} reminders")
            results["g"] = run_script(
                [
                    "bench/reminders.py",
                    "--count",
                    str(cfg["g"]["count"]),
                    "--max-seconds",
                    str(cfg["g"]["max_seconds"]),
                ],
                work,
                env={"DATABASE_URL": db_url},
            )
        if cfg.get("layers") or args.layers:
            log("channel layers")
            results["layers"] = run_script(["bench/channel_layers.py"], work)
    finally:
        for server in servers.values():
            server.stop()
        from django.db import connections

        connections.close_all()
        drop_database()
    results["meta"]["seconds"] = round(time.monotonic() - started)
    table = report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "results.md").write_text(table)
    print(table)
    log(f"bench finished in {results['meta']['seconds']} s; logs in {work}")


if __name__ == "__main__":
    main()
