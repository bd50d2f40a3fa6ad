"""The results as a Markdown table, with the ratios and the issue's targets."""

from __future__ import annotations

import math
import os

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
            *((x.get("hold") or {}).get("p99_ms") for x in (s, k, r)),
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
        for key, label in (
            ("database_cores", "database cores busy"),
            ("redis_cores", "Redis cores busy"),
            ("loadgen_cores", "generator cores busy"),
            ("machine_cores", f"whole machine cores busy (of {os.cpu_count()})"),
        ):
            row(
                "(b) at that rate",
                label,
                *((x.get("hold_usage") or {}).get(key) for x in (s, k, r)),
                "",
                2,
                ratios=False,
            )
        row(
            "(b) at that rate",
            "server CPU ms per message",
            *(x.get("server_cpu_ms_per_msg") for x in (s, k, r)),
            "",
            2,
        )
        capped = [x.get("capped") for x in (s, k, r)]
        if any(capped):
            lines.append(
                "| (b) search | ran out of time with every step passing (the limit is higher) | "
                + " | ".join("yes" if c else ("no" if c is not None else "-") for c in capped)
                + " | | | |"
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
        reopened = sum(d.get("reopened", {}).values())
        if reopened:
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(d["reopened"].items()))
            lines.append(
                f"| (d) storm | closed by the server after coming back, so opened again for the "
                f"final resume (close codes) | {reopened:,} ({codes}) | | | | | |"
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
    floor_table(results, lines)
    layers = results.get("layers")
    if layers:
        for metric, values in layers.items():
            lines.append(
                f"| channel layer | {metric} | pub/sub {fmt(values['pubsub'], 2)} | core {fmt(values['core'], 2)} | | "
                f"{ratio(values['pubsub'], values['core'])} | | |"
            )
    return "\n".join(lines) + "\n"


def floor_table(results: dict, lines: list[str]) -> None:
    """The storing floor's numbers (``--servers ...,floor``), beside stock's: the least any
    server made of uvicorn, PostgreSQL and Redis can spend on a stored message."""
    a, b = results.get("a", {}), results.get("b", {})
    if "floor" not in a and "floor" not in b:
        return
    fa, ka, fb, kb, sb = (
        a.get("floor", {}),
        a.get("stock", {}),
        b.get("floor", {}),
        b.get("stock", {}),
        b.get("stack", {}),
    )
    lines += [
        "",
        "The storing floor (bench/baselines/storing_floor.py): uvicorn as the Procfile runs it, "
        "one SQL statement storing each message with its seq, Redis pub/sub between the workers; "
        "no Django, no checks.",
        "",
        "| scenario | metric | storing floor | stock Channels | floor ÷ stock | full stack ÷ floor |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]

    def row(scenario, metric, floor, stock, stack=None, digits=1):
        lines.append(
            f"| {scenario} | {metric} | {fmt(floor, digits)} | {fmt(stock, digits)} | "
            f"{ratio(floor, stock)} | {ratio(stack, floor)} |"
        )

    if fa:
        s = a.get("stack", {})
        row(f"(a) {fa.get('rate')}/s", "send-to-all p50 ms", fa.get("p50_ms"), ka.get("p50_ms"),
            s.get("p50_ms"), 2)  # fmt: skip
        row(f"(a) {fa.get('rate')}/s", "send-to-all p99 ms", fa.get("p99_ms"), ka.get("p99_ms"),
            s.get("p99_ms"), 2)  # fmt: skip
        row(f"(a) {fa.get('rate')}/s", "server CPU ms per message",
            fa.get("server_cpu_ms_per_msg"), ka.get("server_cpu_ms_per_msg"),
            s.get("server_cpu_ms_per_msg"), 2)  # fmt: skip
    if fb:
        row("(b) zero loss", "highest rate held, p99 < 100 ms (messages/s)", fb.get("best"),
            kb.get("best"), sb.get("best"), 0)  # fmt: skip
        row("(b) zero loss", "highest step rate with nothing lost (messages/s)",
            fb.get("best_lossless"), kb.get("best_lossless"), sb.get("best_lossless"), 0)  # fmt: skip
        usage, stock_usage = fb.get("hold_usage") or {}, kb.get("hold_usage") or {}
        for key, label in (("server_cores", "server cores busy"),
                           ("database_cores", "database cores busy"),
                           ("machine_cores", f"whole machine cores busy (of {os.cpu_count()})")):  # fmt: skip
            # Stock has no database: a ratio against its idle PostgreSQL would mean nothing.
            stock_value = stock_usage.get(key) if key != "database_cores" else None
            row("(b) at that rate", label, usage.get(key), stock_value, None, 2)
        row("(b) at that rate", "server CPU ms per message", fb.get("server_cpu_ms_per_msg"),
            kb.get("server_cpu_ms_per_msg"), sb.get("server_cpu_ms_per_msg"), 2)  # fmt: skip
