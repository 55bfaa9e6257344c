"""The README's commands: CI runs exactly the test command; `scripts/test --quick` is the
inner loop without the browser suite and the PostgreSQL-marked tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(scripts/test)\n```", readme)
    assert commands == ["scripts/test"]
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert lines[-1] == "exec scripts/test"


def test_quick_leaves_out_the_browser_suite_postgresql_and_own_redis_servers() -> None:
    collected = subprocess.run(
        ["scripts/test", "--quick", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    tests = [line for line in collected.splitlines() if "::" in line]
    assert tests, collected
    assert not [test for test in tests if test.startswith("tests/e2e/")]
    assert not [test for test in tests if re.search(r"[\[-]postgresql[\]-]", test)]
    # Modes pointed at an unreachable address start no server: those stay in the quick loop.
    own_servers = [t for t in tests if "unreachable" not in t]
    assert not [t for t in own_servers if re.search(r"[\[-](tls|sentinel|cluster)[\]-]", t)]
    assert not [test for test in tests if test.startswith("tests/shared/test_redis_modes.py")]
    assert [test for test in tests if "[sqlite]" in test]
