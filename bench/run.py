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

Here: the configuration and the run; the parts are in ``bench/harness.py`` (database, rooms,
servers, profiles, the generator's runs), ``bench/scenarios.py`` ((a)-(e)) and
``bench/report.py`` (the table).

By default it makes a fresh database beside ``DATABASE_URL``'s (``<name>_bench``), migrates
it and drops it at the end; ``--database-url`` runs against an existing migrated one instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psutil

from bench.harness import (
    MEMBERS_PER_ROOM,
    PROFILE,
    ROOT,
    TIMING,
    log,
    make_rooms,
    prepare_database,
    run_script,
    start_servers,
)
from bench.report import report
from bench.scenarios import scenario_a, scenario_b, scenario_c, scenario_d, scenario_e

FULL = {
    "a": {"rooms": 12, "rate": 100, "seconds": 10, "drain": 3},
    "b": {
        "rooms": 167,
        "step_seconds": 3,
        "hold_seconds": 60,
        # Every server is held at the same share of its best 3 s step: at 0.9, holds near a
        # server's cliff broke often enough (stock's at 415 in the 11:51 run) that a second,
        # lower hold no longer fitted the ten minutes.
        "hold_fraction": 0.8,
        # Steps rise by 1.4x within a 35 s search: at 1.3x and 15 s the searches ran out of
        # time with every step passing on a quiet machine, below each server's limit.
        "factor": 1.4,
        "bisect": 1,
        # The signed-in servers' rooms carry at most 1,600 messages/s within the chat's rate
        # limit (167 rooms of 12 at 0.8 a second each); raw and the floor get more rooms.
        "max_signed_in": 1600,
        "max": 4000,
        "budget_seconds": 35,
        "hold_attempts": 2,
    },
    # (c) and (d) at the issue's sizes: 5,004 idle sockets, 2,004 reconnecting (--small: a fifth
    # of each, 1,008 and 1,008, about two minutes less).
    "c": {"rooms": 417, "settle": 2, "idle_seconds": 2},
    "d": {"rooms": 167, "rate": 100, "before": 2, "jitter": 5, "give_up": 30, "after": 2},
    "e": {"clients": 50, "seconds": 5, "pace": 1.0},
    "f": {"rounds": 10, "long": 40},
    "g": {"count": 10_000, "max_seconds": 75},
    "layers": False,  # --layers: bench/channel_layers.py too (about 20 s)
    # The whole run's budget (the issue's is 10 minutes): (b) comes last and holds a second
    # time only within it.
    "seconds": 570,
    # Each server process compiles its matchers and fills its caches on first use.
    "warmup": {"rate": 20, "seconds": 5},
    "settle": 1.0,
    # A server counts as idle again (before the next measurement) after this long under a
    # tenth of a core.
    "idle_window": 2.0,
}
# The smoke run CI makes (tests/bench/): every scenario and server once, as briefly as still
# shows the harness works and loses nothing; its numbers mean nothing.
QUICK = {
    "a": {"rooms": 2, "rate": 10, "seconds": 1, "drain": 15},
    "b": {
        "rooms": 2,
        "step_seconds": 1,
        "hold_seconds": 1,
        "factor": 2,
        "bisect": 0,
        "max_signed_in": 20,
        "max": 20,
        "budget_seconds": 3,
        "hold_attempts": 1,
    },
    "c": {"rooms": 2, "settle": 0.3, "idle_seconds": 0.3},
    "d": {"rooms": 2, "rate": 5, "before": 0.5, "jitter": 0.5, "give_up": 20, "after": 0.5},
    "e": {"clients": 4, "seconds": 1, "pace": None},
    "f": {"rounds": 1, "long": 2},
    "g": None,
    "layers": False,
    "seconds": 120,
    "warmup": {"rate": 10, "seconds": 0.5, "pause": 0.2},
    "settle": 0.2,
    "idle_window": 0.3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: smoke, not numbers")
    parser.add_argument("--scenarios", default="abcdefg", help="which of a-g to run")
    parser.add_argument(
        "--servers",
        default="stack,stock,raw",
        help="which servers, of stack, stock, raw, floor (the storing floor, PostgreSQL "
        "only: bench/baselines/storing_floor.py) and before",
    )
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
        "fourth server, 'before', for a side-by-side comparison (add it to --servers); with its "
        "own .venv, in that environment",
    )
    parser.add_argument("--a-rate", type=int, help="(a)'s rate instead of 100 messages/s")
    parser.add_argument(
        "--a-rooms",
        type=int,
        help="(a)'s rooms of 12 instead of 12 (past about 115 messages/s, 12 rooms' members "
        "would go over the chat's rate limit)",
    )
    parser.add_argument("--c-rooms", type=int, help="(c)'s rooms of 12")
    parser.add_argument(
        "--layers", action="store_true", help="also compare the two channels_redis layers"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="(c) with 1,008 idle connections and (d) with 1,008 clients instead of 5,004 and 2,004",
    )
    args = parser.parse_args()
    if args.profile:
        PROFILE["out"] = args.out / "profiles"
        PROFILE["out"].mkdir(parents=True, exist_ok=True)
    cfg = QUICK if args.quick else FULL
    if args.small and not args.quick:
        cfg = {**cfg, "c": {**cfg["c"], "rooms": 84}, "d": {**cfg["d"], "rooms": 84}}
    if args.c_rooms:
        cfg = {**cfg, "c": {**cfg["c"], "rooms": args.c_rooms}}
    if args.a_rate:
        cfg = {**cfg, "a": {**cfg["a"], "rate": args.a_rate}}
    if args.a_rooms:
        cfg = {**cfg, "a": {**cfg["a"], "rooms": args.a_rooms}}
    if args.layers:
        cfg = {**cfg, "layers": True}
    scenarios = set(args.scenarios)
    TIMING.update(warmup=cfg["warmup"], settle=cfg["settle"], idle_window=cfg["idle_window"])
    # Each named once (in the order given): a server named twice would be started twice, and
    # the first of the two left serving after the run.
    kinds = list(dict.fromkeys(k for k in args.servers.split(",") if k))
    unknown = set(kinds) - {"stack", "stock", "raw", "floor", "before"}
    if unknown:
        raise SystemExit(f"Unknown servers: {', '.join(sorted(unknown))}.")
    if "before" in kinds and args.before is None:
        raise SystemExit("The 'before' server needs --before DIR (another checkout).")
    started = time.monotonic()

    db_url, drop_database = prepare_database(args.database_url)
    if "floor" in kinds and not urlparse(db_url).scheme.startswith("postgres"):
        drop_database()
        raise SystemExit("The storing floor stores in PostgreSQL: set DATABASE_URL to one.")
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
            log(f"servers ready: {', '.join(servers)}")
        if "a" in scenarios:
            results["a"] = scenario_a(servers, rooms["a"], cfg["a"], work)
        # (c) before the busier scenarios: a process's memory doesn't shrink after them, so
        # idle connections are measured on servers that have held no more sockets than that.
        if "c" in scenarios:
            results["c"] = scenario_c(servers, rooms["c"], cfg["c"], work)
        if "d" in scenarios and "stack" in servers:
            results["d"] = scenario_d(servers["stack"], rooms["d"], cfg["d"], work)
        if "e" in scenarios and "stack" in servers:
            results["e"] = scenario_e(
                servers["stack"], rooms.get("a") or make_rooms(2, "e-"), cfg["e"], work
            )
        run_scripts(results, scenarios, cfg, work, db_url)
        # (b) last, in the time that is left: a server whose first 60 s hold breaks holds again
        # 20% lower only if that still ends within the run's budget.
        if "b" in scenarios:
            deadline = time.time() + cfg["seconds"] - (time.monotonic() - started)
            results["b"] = scenario_b(
                servers, rooms["b"], cfg["b"], work, results.get("a", {}), deadline=deadline
            )
    finally:
        for server in servers.values():
            server.stop()
        from django.db import connections

        connections.close_all()
        drop_database()
    results["meta"]["seconds"] = round(time.monotonic() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    # The numbers first: a report that fails to format them must not lose them.
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = report(results)
    (args.out / "results.md").write_text(table)
    print(table)
    log(f"bench finished in {results['meta']['seconds']} s; logs in {work}")


def run_scripts(results: dict, scenarios: set, cfg: dict, work: Path, db_url: str) -> None:
    """(f) and (g), and the channel layers with ``--layers``: scripts of their own (the web
    servers idle meanwhile)."""
    if "f" in scenarios:
        log("(f) matcher")
        results["f"] = run_script(["bench/matcher.py", "--rounds", str(cfg["f"]["rounds"])], work)
    if "g" in scenarios and cfg.get("g"):
        log(f"(g) {cfg['g']['count']:,} reminders")
        args = ["bench/reminders.py", "--count", str(cfg["g"]["count"])]
        args += ["--max-seconds", str(cfg["g"]["max_seconds"])]
        results["g"] = run_script(args, work, env={"DATABASE_URL": db_url})
    if cfg.get("layers"):
        log("channel layers")
        results["layers"] = run_script(["bench/channel_layers.py"], work)


if __name__ == "__main__":
    main()
