"""Start-up time of the CLI and of `serve`, as ratios against `import aiohttp` measured in the
same run (the floor for anything serving HTTP), each the median of alternating rounds.

    .venv/bin/python -m bench.startup [--rounds 7]

Targets (issue 16): `--help` and `channels list` answer in <= 0.5 s and `serve` is ready in
<= 1 s on the reference machine; the ratios carry that over to slower or busier ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

READY_TIMEOUT_SECONDS = 30.0


def _command() -> list[str]:
    script = shutil.which("provider-gateway", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "provider_gateway"]


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve_until_ready(env: dict[str, str]) -> float:
    """From process start to the first 200 from /readyz, then stopped with SIGTERM."""
    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*_command(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < READY_TIMEOUT_SECONDS:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
        raise RuntimeError("serve did not become ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (default: 7)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        env = {
            **os.environ,
            "GATEWAY_DATA_DIR": scratch,
            "GATEWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "GATEWAY_LOG_LEVEL": "warning",
        }
        cli = _command()
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        for index in range(3):
            subprocess.run(
                [
                    *cli,
                    "channels",
                    "add",
                    "slack",
                    "--client-id",
                    f"{index}.1",
                    "--client-secret",
                    "s",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
        figures: dict[str, Callable[[], float]] = {
            "python -c pass": lambda: _timed([sys.executable, "-c", "pass"], env),
            "baseline: import aiohttp": lambda: _timed(
                [sys.executable, "-c", "import aiohttp"], env
            ),
            "provider-gateway --help": lambda: _timed([*cli, "--help"], env),
            "provider-gateway channels list": lambda: _timed([*cli, "channels", "list"], env),
            "provider-gateway serve (to /readyz 200)": lambda: _serve_until_ready(env),
        }
        samples: dict[str, list[float]] = {name: [] for name in figures}
        for _ in range(rounds):  # alternating, so a busy moment weighs on every figure alike
            for name, measure in figures.items():
                samples[name].append(measure())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["baseline: import aiohttp"]
    print(f"median of {rounds} alternating rounds; ratio against `import aiohttp`")
    for name, seconds in medians.items():
        print(f"  {name:<42} {seconds:6.3f} s  {seconds / baseline:5.2f}x")


if __name__ == "__main__":
    main()
