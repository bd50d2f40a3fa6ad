"""The harness's parts: the database and its rooms of members, the servers, profiles, the
load generator's runs, and the loss check against stored ``seq``s (bench/run.py drives them)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MEMBERS_PER_ROOM = 12
# The chat's own limit is 10 posts per 10 s per member and room: spread the rate so each member
# sends at most 0.8 a second.
MEMBER_RATE = 0.8


STARTED = time.monotonic()


def log(text: str) -> None:
    """A progress line, stamped with the seconds since the run started (where the time goes)."""
    print(f"[{time.monotonic() - STARTED:4.0f} s] {text}", file=sys.stderr, flush=True)


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


def floor_stored(rooms: list[dict]) -> int:
    """How many messages the storing floor has stored for ``rooms`` (0 before its first)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('floor_message') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(
            "SELECT count(*) FROM floor_message WHERE room = ANY(%s)",
            [[f"/ws/groups/{room['slug']}/" for room in rooms]],
        )
        return cursor.fetchone()[0]


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
        # The child gets its own copy of the log's descriptor; ours is closed once it has it.
        with open(self.log_path, "ab") as out:
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
            # With an environment of its own (a dependency added or changed), served by it.
            own = before / ".venv" / "bin"
            if (own / "python").exists() and own.resolve() != Path(PYTHON).parent.resolve():
                env["PATH"] = f"{own}{os.pathsep}{os.environ.get('PATH', '')}"
        elif kind == "stock":
            command = web.replace(
                "community.asgi:application", "bench.baselines.stock_channels:application"
            )
            env["DJANGO_SETTINGS_MODULE"] = "bench.baselines.stock_settings"
        elif kind == "floor":
            # The storing floor (bench/baselines/storing_floor.py): the stack's server command,
            # its database and Redis, a plain ASGI app.
            command = web.replace(
                "community.asgi:application", "bench.baselines.storing_floor:application"
            )
        else:
            command = f"{shlex.quote(PYTHON)} -m bench.baselines.raw_websockets --port {port}"
        servers[kind] = Server(kind, command, env, port, work / f"{kind}.log", cwd).start()
    try:
        for kind, server in servers.items():
            server.wait_ready(http=kind in ("stack", "stock"))
    except BaseException:
        # One that cannot start (a bad command line, say) must not leave the others serving
        # after the run has given up.
        for server in servers.values():
            server.stop()
        raise
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
    with open(work / "loadgen.log", "ab") as errors:
        process = subprocess.Popen(
            [PYTHON, "-m", "bench.loadgen", str(spec_path), str(out_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    gen = psutil.Process(process.pid)
    events = []
    deadline = time.monotonic() + timeout
    profiler = None
    for line in process.stdout:
        event = json.loads(line)
        event["server"] = server.snapshot() if server else None
        if event["event"] in MEASURED:
            event["machine"] = machine_snapshot()
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


# The services every server shares the machine with, by process name.
SERVICES = {"postgres": "database", "redis-server": "redis"}


# The events that start and end a measurement (the machine is read only at those).
MEASURED = {
    "measure_start",
    "measure_end",
    "hold_start",
    "hold_end",
    "idle_start",
    "idle_end",
    "storm_start",
    "storm_end",
}


def machine_snapshot() -> dict:
    """The whole machine's busy CPU seconds (all cores, everything but idle and I/O wait) and
    the CPU seconds of the database and Redis processes, to show where a measurement's cores
    went: the server's, the generator's, the services' and what else ran."""
    times = psutil.cpu_times()
    out = {"busy": sum(times) - times.idle - getattr(times, "iowait", 0.0)}
    out.update(dict.fromkeys(SERVICES.values(), 0.0))
    for proc in psutil.process_iter(["name", "cpu_times"]):
        kind = SERVICES.get(proc.info["name"] or "")
        if kind and proc.info["cpu_times"]:
            out[kind] += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return out


def between(events: list, start: str, end: str, nth: int = 0) -> dict:
    """Server CPU (cores used), wall seconds, the load generator's, the database's and
    Redis's cores, and the whole machine's, between two events. (The services' figures miss
    processes that ended in between, such as a database connection closed meanwhile.)"""
    starts = [e for e in events if e["event"] == start]
    ends = [e for e in events if e["event"] == end]
    a, b = starts[nth], ends[nth]
    wall = b["server"]["wall"] - a["server"]["wall"]
    out = {
        "wall": wall,
        "server_cpu_s": b["server"]["cpu"] - a["server"]["cpu"],
        "server_cores": (b["server"]["cpu"] - a["server"]["cpu"]) / wall if wall else None,
        "loadgen_cores": (b["loadgen_cpu"] - a["loadgen_cpu"]) / wall if wall else None,
    }
    if wall and a.get("machine") and b.get("machine"):
        for key in ("busy", *SERVICES.values()):
            out[f"{key}_cores"] = (b["machine"][key] - a["machine"][key]) / wall
        out["machine_cores"] = out.pop("busy_cores")
    return out


# The run's pace (bench/run.py sets it, FULL or QUICK): the warm-up before each fan-out, the
# pause after connecting, and how long a server must stay quiet to count as idle.
TIMING: dict = {"idle_window": 2.0}


def spec_for(kind: str, server: Server, rooms: list[dict], mode: str, **extra) -> dict:
    if mode == "fanout":
        extra.setdefault("warmup", TIMING["warmup"])
        extra.setdefault("settle", TIMING["settle"])
    return {
        "kind": "stack" if kind == "before" else kind,
        "mode": mode,
        "url": f"ws://localhost:{server.port}",
        "origin": f"http://localhost:{server.port}",
        "rooms": [{"slug": r["slug"], "sessions": r["sessions"]} for r in rooms],
        **extra,
    }


def wait_until_idle(server: Server, *, limit: float = 60.0) -> None:
    """Let a server finish what an overload left queued before the next measurement starts:
    until it uses under a tenth of a core for ``TIMING["idle_window"]`` seconds (or ``limit``
    seconds pass)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.snapshot()
        time.sleep(TIMING["idle_window"])
        after = server.snapshot()
        if (after["cpu"] - before["cpu"]) / (after["wall"] - before["wall"]) < 0.1:
            return
    log(f"    {server.name} still busy after {limit:.0f} s")


def run_script(args: list[str], work: Path, env: dict | None = None, timeout: float = 900) -> dict:
    out = work / f"script-{time.monotonic_ns()}.json"
    with open(work / "scripts.log", "ab") as log_file:
        subprocess.run(
            [PYTHON, *args, "--json", str(out)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            check=True,
            timeout=timeout,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return json.loads(out.read_text())
