"""Scenarios (a)-(e) against running servers (bench/run.py starts them; (f) and (g) are
scripts of their own)."""

from __future__ import annotations

import math

from bench.harness import (
    MEMBER_RATE,
    MEMBERS_PER_ROOM,
    between,
    check_loss,
    floor_stored,
    latest_seqs,
    log,
    run_loadgen,
    spec_for,
    wait_until_idle,
)

# --- Scenarios ------------------------------------------------------------------------------------


def scenario_a(servers, rooms, cfg, work) -> dict:
    out = {}
    for kind, server in servers.items():
        log(f"(a) {kind}: {cfg['rate']} messages/s for {cfg['seconds']} s")
        before = latest_seqs(rooms) if kind in ("stack", "before") else {}
        stored_before = floor_stored(rooms) if kind == "floor" else 0
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
        if kind == "floor":
            # The warm-up's messages and the measured ones: each stored before it was sent on.
            numbers["stored"] = floor_stored(rooms) - stored_before
        out[kind] = numbers
        wait_until_idle(server)
    return out


# The baselines that take any socket: no sign-in, no membership (raw and the storing floor).
SESSIONLESS = {"raw", "floor"}


def scenario_b(servers, all_rooms, cfg, work, calibration: dict, *, deadline: float) -> dict:
    """``deadline``: the wall-clock time (``time.time()``) the run should end by. Each server
    gets its search and one hold whatever the clock says; a second hold, only if it would end
    before ``deadline`` less what the servers after it need for theirs."""
    out = {}
    each = cfg["budget_seconds"] + cfg["hold_seconds"] + 30  # the search, a hold, connecting
    for i, (kind, server) in enumerate(servers.items()):
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
        ceiling = cfg["max"] if kind in SESSIONLESS else cfg["max_signed_in"]
        needed = math.ceil(min(ceiling, 3 * predicted) / (MEMBER_RATE * MEMBERS_PER_ROOM))
        rooms = all_rooms[: max(2, min(len(all_rooms), needed))]
        if kind in SESSIONLESS and needed > len(rooms):
            # Servers that check no session are given rooms beyond the database's, so that
            # their search can reach their limit instead of stopping at the rooms' ceiling.
            rooms = rooms + [
                {"slug": f"extra-{n}", "sessions": [None] * MEMBERS_PER_ROOM}
                for n in range(needed - len(rooms))
            ]
        search = {
            "start": start,
            "factor": cfg["factor"],
            "max": ceiling,
            "step_seconds": cfg["step_seconds"],
            "hold_seconds": cfg["hold_seconds"],
            "bisect": cfg["bisect"],
            "drain": 2.0,
            "gap": 0.5,
            "p99_limit_ms": 100.0,
            "budget_seconds": cfg["budget_seconds"],
            "hold_attempts": cfg["hold_attempts"],
            "hold_fraction": cfg.get("hold_fraction", 1.0),
            "holds_until": deadline - (len(servers) - 1 - i) * each,
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
            "capped": found.get("capped", False),
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
        if kind in ("before", "floor"):
            continue  # the floor is about storing, not holding sockets
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
        "reopened": result["reopened"],
        "errors": result["errors"],
        "server_cores": usage["server_cores"],
        "server_errors_logged": log_text.count("Traceback"),
        "loss": loss,
    }


def scenario_e(server, rooms, cfg, work) -> dict:
    """The room page and the directory, each under ``clients`` concurrent clients: back to back
    (the most it serves), and each client once every ``pace`` seconds. Every room page client is
    a different member, each asking for their own room; the directory's clients are one member
    of each room."""
    out = {}
    visits = [
        [f"/groups/{room['slug']}/room/", room["sessions"][(i // len(rooms)) % MEMBERS_PER_ROOM]]
        for i in range(cfg["clients"])
        for room in [rooms[i % len(rooms)]]
    ]
    cookies = [r["sessions"][0] for r in rooms]
    runs = [("closed loop", 0)]
    if cfg["pace"]:
        runs.append((f"each client every {cfg['pace']:g} s", cfg["pace"]))
    for label, pace in runs:
        for name in ("room", "directory"):
            log(f"(e) {name} page, {cfg['clients']} clients, {label}")
            spec = {
                "mode": "http",
                "host": "localhost",
                "port": server.port,
                "clients": cfg["clients"],
                "seconds": cfg["seconds"],
                "pace": pace,
                "paths": ["/groups/"],
                "cookies": cookies,
            }
            if name == "room":
                spec["visits"] = visits
            result, events = run_loadgen(spec, server, work, 300)
            stats = result["paths"]["*"]
            out[f"{name}, {label}"] = {
                "requests": stats["requests"],
                "per_s": stats["per_s"],
                "statuses": stats["statuses"],
                "p50_ms": stats["p50_ms"],
                "p95_ms": stats["p95_ms"],
                "max_ms": stats["max_ms"],
                "members": len({v[1] for v in visits}) if name == "room" else len(cookies),
                **between(events, "measure_start", "measure_end"),
            }
    return out
