"""Hook for upstream call metrics, so clients need not know about Prometheus."""

from __future__ import annotations

from collections.abc import Callable

# (provider, method, status, seconds): status is the HTTP status, "refused" (an error reply),
# "timeout" or "network_error".
UpstreamObserver = Callable[[str, str, str, float], None]


def ignore(_provider: str, _method: str, _status: str, _seconds: float) -> None:
    return None
