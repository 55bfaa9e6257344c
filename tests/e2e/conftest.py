"""The browser suite's fixtures: the whole stack on loopback, and what it needs installed.

Nothing here skips: tests/e2e/setup (run by scripts/test) installs Chromium, the npm packages
and the Vite build, so a missing piece is a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import DIST_DIR, E2E_DIR, Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session", autouse=True)
def installed() -> None:
    missing = [
        str(path)
        for path in (
            CHROMIUM,
            E2E_DIR / "node_modules" / "playwright-core",
            E2E_DIR / "node_modules" / "@knocklabs" / "react",
            DIST_DIR / "index.html",
        )
        if not path.exists()
    ]
    if missing:
        pytest.fail(f"run tests/e2e/setup first; missing: {', '.join(missing)}")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """tests/e2e/output/<test>/: the screenshots of the last run of that test."""
    path = E2E_DIR / "output" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path
