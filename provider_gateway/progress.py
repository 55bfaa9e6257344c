"""Progress of a long CLI command on a terminal: count, rate and time left, redrawn in place.

Drawn only when the stream is a TTY, so piped or logged output (and the JSON report on
stdout) stays clean.
"""

from __future__ import annotations

import time
from typing import TextIO


class ProgressLine:
    def __init__(self, stream: TextIO, noun: str, *, interval: float = 0.2) -> None:
        self._stream = stream
        self._noun = noun
        self._interval = interval
        self._enabled = stream.isatty()
        self._drawn_at: float | None = None
        self.done = 0
        self.total = 0

    def update(self, done: int, total: int, elapsed: float) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if not self._enabled or (
            self._drawn_at is not None and now - self._drawn_at < self._interval and done < total
        ):
            return
        self._drawn_at = now
        self._stream.write("\r" + describe(done, total, elapsed, self._noun) + "\x1b[K")
        self._stream.flush()

    def finish(self) -> None:
        """End the line, so what is printed next starts on its own."""
        if self._drawn_at is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn_at = None


def describe(done: int, total: int, elapsed: float, noun: str) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    percent = 100.0 * done / total if total else 100.0
    line = f"{done:,}/{total:,} {noun} ({percent:.0f}%), {rate:,.0f} {noun}/s"
    if 0 < done < total and rate > 0:
        line += f", about {_duration((total - done) / rate)} left"
    return line


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
