"""The benchmarks stay runnable: each runs briefly and prints its ratio line.

Timings are not asserted here (performance is measured by running bench/, not by tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("module", "args", "line"),
    [
        (
            "bench.cached_channels",
            ["--requests", "300", "--rounds", "2"],
            r"^cached channels: \d+\.\d\dx bare aiohttp",
        ),
        (
            "bench.cached_channels",
            ["--requests", "300", "--rounds", "2", "--redis", "redis://127.0.0.1:6379/0"],
            r"^cached channels: \d+\.\d\dx bare aiohttp.*, Redis\)$",
        ),
        (
            "bench.miss_latency",
            ["--requests", "30"],
            r"^miss latency: \d+\.\d\dx calling Slack directly",
        ),
        (
            "bench.cold_burst",
            ["--requests", "20", "--redis", "redis://127.0.0.1:6379/0"],
            r"^cold burst, two replicas on Redis: 1\.00 upstream calls per page",
        ),
        (
            "bench.paging",
            ["--channels", "2500", "--limit", "1000", "--inject-every", "2"],
            r"^paging: 0 client errors, 2,500 of 2,500 channels \(0 repeated\) .* "
            r"0 429s for breaking tier 2",
        ),
        ("bench.rss", ["--requests", "500"], r"^RSS: \d+\.\d\dx after 500 requests"),
        (
            "bench.scale",
            ["--tenants", "300", "--baseline", "20", "--samples", "5", "--database", "sqlite"],
            r"^scale: 300 vs 20 tenants on sqlite: worst p50 ratio \d+\.\d\dx",
        ),
        (
            "bench.scale",
            ["--tenants", "300", "--baseline", "20", "--samples", "5"],
            r"^rotate-encryption-key: 30\d rows in ",
        ),
        (
            "bench.startup",
            ["--rounds", "1"],
            r"^  provider-gateway serve \(to /readyz 200\) +\d+\.\d{3} s +\d+\.\d\dx$",
        ),
    ],
)
def test_benchmark_runs(module: str, args: list[str], line: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(line, result.stdout, re.MULTILINE), result.stdout
