"""The load harness (bench/, ``make bench``) in its quick mode: it runs end to end against real
server processes, PostgreSQL and Redis, and loses nothing. Benchmarks are never timed in tests:
nothing here looks at a latency, a rate or a memory figure, only at counts that must be exact.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.servers import test_database_url as database_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(480)]


def servers() -> list[str]:
    """Every server the harness has; the storing floor stores in PostgreSQL, so not on SQLite."""
    kinds = ["stack", "stock", "raw"]
    if connection.vendor == "postgresql":
        kinds.append("floor")
    return kinds


@pytest.fixture
def results(tmp_path):
    """One quick harness run: the full stack and both baselines, one worker each, on this
    test database; scenarios (a) fan-out, (c) idle connections, (d) reconnect storm, (e) HTTP
    pages, (f) the matcher and (b) the search and hold."""
    out = tmp_path / "results"
    subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--scenarios", "abcdef",
         "--servers", ",".join(servers()),
         "--workers", "1", "--database-url", database_url(), "--out", str(out)],
        cwd=ROOT, check=True, timeout=450,
    )  # fmt: skip
    assert (out / "results.md").read_text().startswith("Measured ")
    return json.loads((out / "results.json").read_text())


def test_the_quick_harness_runs_every_scenario_on_every_server_and_loses_no_message(results):
    fanout = results["a"]
    assert set(fanout) == set(servers())
    for kind, numbers in fanout.items():
        assert numbers["connect"]["failed"] == {}, kind
        assert numbers["sent"] > 0, kind
        assert numbers["incomplete"] == 0, kind  # every message reached every member
        assert numbers["complete"] == numbers["sent"], kind
    # The full stack, checked against the database: every member has every stored seq (the
    # measured messages and the warm-up's before them).
    loss = fanout["stack"]["loss"]
    assert loss["stored"] >= fanout["stack"]["sent"]
    assert loss["expected"] == loss["stored"] * 12
    assert (loss["delivered"], loss["lost"], loss["duplicates"]) == (loss["expected"], 0, 0)
    if "floor" in fanout:
        # The storing floor stored every message it delivered (and the warm-up's before them).
        assert fanout["floor"]["stored"] >= fanout["floor"]["sent"]

    for kind, idle in results["c"].items():
        assert (idle["connections"], idle["failed"], idle["open_at_end"]) == (24, {}, 24), kind

    storm = results["d"]
    assert (storm["resumed"], storm["http_5xx"], storm["failed_handshakes"]) == (24, 0, 0)
    assert storm["loss"]["stored"] > 0
    assert (storm["loss"]["lost"], storm["loss"]["unexpected"]) == (0, 0)

    for page, numbers in results["e"].items():
        assert set(numbers["statuses"]) == {"200"}, page

    assert results["f"]["rows"]["labelled set (267 messages)"]["calls"] == 267

    # (b): each server searched, then held, and the hold says where the machine's cores went.
    search = results["b"]
    assert set(search) == set(servers())
    for kind, numbers in search.items():
        hold = numbers["hold"]
        assert hold["sent"] > 0, kind
        assert (hold["incomplete"], hold["refused"]) == (0, {}), kind
        # The quick search's ceiling (20 messages/s) is below every server's limit: a search
        # whose steps all passed ran out of room before finding it, and says so.
        if all(step["passed"] for step in numbers["steps"]):
            assert numbers["capped"] is True, kind
        usage = numbers["hold_usage"]
        assert usage["machine_cores"] > 0, kind
        assert {"database_cores", "redis_cores", "loadgen_cores"} <= set(usage), kind
    # Every stored seq of the whole search reached every member of the stack's rooms.
    loss = search["stack"]["loss"]
    assert loss["stored"] > 0
    assert (loss["delivered"], loss["lost"], loss["duplicates"]) == (loss["expected"], 0, 0)
    # Raw checks no session, so it gets rooms beyond the database's signed-in ones.
    assert search["raw"]["rooms"] > search["stack"]["rooms"]
