"""The load harness refuses a server list it can't run before it starts anything (no database
made, no server left serving), and says what to fix."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("servers", "says"),
    [
        ("stack,bogus", "Unknown servers: bogus."),
        ("stack,before", "The 'before' server needs --before DIR"),
    ],
)
def test_a_server_list_it_cannot_run_is_refused_before_anything_starts(servers, says, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--servers", servers,
         "--database-url", "postgres://nobody@127.0.0.1:1/never", "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode != 0
    assert says in done.stderr
    assert not (tmp_path / "out").exists()
