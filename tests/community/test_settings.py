import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_django(env_overrides, *args):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_mode_refuses_to_start_with_the_default_secret_key():
    result = run_django({"DEBUG": "false", "ALLOWED_HOSTS": "community.example.test"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is the development default" in result.stderr


def test_production_settings_pass_the_deploy_checks():
    result = run_django(
        {
            "DEBUG": "false",
            "SECRET_KEY": "x" * 64 + "-synthetic-test-secret-with-enough-entropy-3f9a1c",
            "ALLOWED_HOSTS": "community.example.test",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["", "*"])
def test_production_refuses_a_wildcard_or_empty_allowed_hosts(value):
    result = run_django(
        {"DEBUG": "false", "SECRET_KEY": "y" * 64 + "-synthetic", "ALLOWED_HOSTS": value}, "check"
    )
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr
