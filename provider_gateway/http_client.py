"""The one outbound aiohttp session: CA bundle, proxies from the environment, timeouts."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiohttp

from provider_gateway import __version__
from provider_gateway.config import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The system trust store, plus `GATEWAY_CA_BUNDLE` when set."""
    context = ssl.create_default_context()
    if settings.ca_bundle is not None:
        context.load_verify_locations(cafile=str(settings.ca_bundle))
    return context


def create_session(settings: Settings) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl_context(settings), limit=100),
        timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
        trust_env=True,  # HTTPS_PROXY / NO_PROXY
        headers={"User-Agent": f"provider-gateway/{__version__}"},
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float:
    """A Retry-After header in seconds (1 when absent or unreadable)."""
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except (TypeError, ValueError):
        return 1.0
