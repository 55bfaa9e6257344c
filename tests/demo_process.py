"""`provider-gateway demo` as a subprocess, started and stopped the way a person does it."""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

STARTUP_SECONDS = 60


class _Lines:
    """A subprocess's stdout, line by line, with deadlines (a thread does the blocking reads)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self._stdout:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, marker: str | None, seconds: float) -> str:
        """Lines up to the one holding `marker` (None: to the end of the output)."""
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._stdout.close()
                if marker is None:
                    return "".join(seen)
                break
            seen.append(line)
            if marker is not None and marker in line:
                return "".join(seen)
        raise AssertionError(f"no {marker!r} within {seconds} s in {''.join(seen)!r}")


def console_script() -> str:
    """The installed `provider-gateway` script next to this Python (what a user runs)."""
    executable = shutil.which("provider-gateway", path=str(Path(sys.executable).parent))
    assert executable, "the provider-gateway console script is installed"
    return executable


@contextmanager
def running_demo(directory: Path) -> Iterator[tuple[str, str]]:
    """The console script's `demo` on a free port: yields its URL and banner; on exit, stops
    it with SIGINT (Ctrl+C) and checks it ended cleanly and left nothing behind."""
    executable = console_script()
    port = free_port()
    errors = directory / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [executable, "demo", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=directory,
        )
        try:
            output = _Lines(process)
            banner = output.until("Press Ctrl+C", STARTUP_SECONDS)
            data = re.search(r"^  data\s+(\S+) ", banner, re.MULTILINE)
            assert data, banner
            data_directory = Path(data.group(1))
            assert (data_directory / "gateway.db").is_file()
            yield f"http://127.0.0.1:{port}", banner
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
            assert "Stopping" in output.until(None, 5)
            assert not data_directory.exists(), "the demo leaves nothing behind"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    log = errors.read_text()
    assert "Traceback" not in log, log
    assert "GET / 200" in log, "the access log goes to stderr"
