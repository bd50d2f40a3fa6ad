"""How long the automatic-flag matcher takes per message (measured here, never asserted in tests).

Builds the compiled matcher from the default rule set (moderation/default_rules.py) without a
database and times ``CompiledMatcher.match``:
- over every message of the labelled set (tests/data/crisis_samples.jsonl), many rounds,
- over long 4,000-character messages (ordinary chat text, and text dense with crisis phrasing).

Prints p50 / p99 per message in microseconds. In the app each message also costs one cache read
(the rules' version token in Redis) before matching; that is a network round trip, not matching.

Run: .venv/bin/python bench/matcher.py [--rounds 30] [--json out.json] (bench/run.py runs it as (f))
Numbers are noisy on a shared machine; compare them within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moderation.default_rules import DEFAULT_RULES  # noqa: E402
from moderation.matcher import CompiledMatcher, RuleSpec  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "crisis_samples.jsonl"
ROUNDS = 30
LONG_LENGTH = 4000
LONG_MESSAGES = 40


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(matcher: CompiledMatcher, texts: list[str], rounds: int) -> list[float]:
    """Microseconds per call, one entry per call."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        for text in texts:
            start = clock()
            matcher.match(text)
            out.append((clock() - start) / 1000)
    return out


def long_messages(texts: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    messages = []
    for _ in range(count):
        parts, length = [], 0
        while length < LONG_LENGTH:
            part = rng.choice(texts)
            parts.append(part)
            length += len(part) + 2
        messages.append(". ".join(parts)[:LONG_LENGTH])
    return messages


ROWS: dict[str, dict] = {}


def row(label: str, samples: list[float]) -> None:
    ROWS[label.strip()] = {
        "calls": len(samples),
        "p50_us": statistics.median(samples),
        "p99_us": percentile(samples, 0.99),
        "max_us": max(samples),
    }
    print(
        f"{label:<44} {len(samples):>7} {statistics.median(samples):>9.1f} "
        f"{percentile(samples, 0.99):>9.1f} {max(samples):>9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--long", type=int, default=LONG_MESSAGES, help="how many long messages")
    parser.add_argument("--json", type=Path, help="also write the numbers here (bench/run.py)")
    args = parser.parse_args()
    specs = [
        RuleSpec(id=number, kind=rule["kind"], action=rule["action"], patterns=rule["patterns"])
        for number, rule in enumerate(DEFAULT_RULES, start=1)
    ]
    started = time.perf_counter()
    matcher = CompiledMatcher(specs)
    built_ms = (time.perf_counter() - started) * 1000

    rows = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    ordinary = [r["text"] for r in rows if not r["crisis"]]
    crisis = [r["text"] for r in rows if r["crisis"]]
    matcher.match(texts[0])  # warm up

    print(
        f"Default rules: {len(specs)}, compiled in {built_ms:.0f} ms (once per process and rule change)"
    )
    print(f"{'messages':<44} {'calls':>7} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    row(f"labelled set ({len(texts)} messages)", timed(matcher, texts, args.rounds))
    row("  of which not crisis", timed(matcher, ordinary, args.rounds))
    row("  of which crisis", timed(matcher, crisis, args.rounds))
    row(
        f"long, ordinary text ({LONG_LENGTH} chars)",
        timed(matcher, long_messages(ordinary, args.long, 1), 3),
    )
    row(
        f"long, crisis-dense text ({LONG_LENGTH} chars)",
        timed(matcher, long_messages(texts, args.long, 2), 3),
    )
    if args.json:
        args.json.write_text(json.dumps({"rules": len(specs), "built_ms": built_ms, "rows": ROWS}))


if __name__ == "__main__":
    main()
