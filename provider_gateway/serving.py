"""What `serve` adds around the app: the port taken first, one start-up summary line, and
the heavy client libraries loaded once the service already answers."""

from __future__ import annotations

import importlib
import logging
import socket
import threading
from typing import Any

from aiohttp import web

from provider_gateway import __version__
from provider_gateway.config import KNOCK_TIERS, Settings
from provider_gateway.crypto import GENERATED_KEY_FILE
from provider_gateway.failures import port_taken
from provider_gateway.shared.redis_client import describe_redis
from provider_gateway.storage.database import display_url
from provider_gateway.web.appkeys import GATEWAY, SETTINGS, SHARED_STATE

log = logging.getLogger("provider_gateway")

# Loaded on first use by the request that needs them (Slack calls, Teams tokens, the OpenAPI
# document); loading them in a thread right after start-up spares that request the wait.
DEFERRED_IMPORTS = ("slack_sdk.web.async_client", "slack_sdk.signature", "msal", "yaml")


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a taken port is one line and no start-up work."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise port_taken(host, port, error) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise port_taken(host, port, error) from None
    return sock


async def log_startup_summary(app: web.Application) -> None:
    """One line with what this process will actually use (also as structured fields)."""
    summary = await startup_summary(app)
    text = ", ".join(f"{name}={value}" for name, value in summary.items())
    log.info("provider-gateway %s starting: %s", __version__, text, extra=summary)


async def startup_summary(app: web.Application) -> dict[str, Any]:
    settings, gateway = app[SETTINGS], app[GATEWAY]
    redis = await app[SHARED_STATE].check()
    return {
        "public_url": settings.public_url,
        "database": display_url(settings),
        "database_pool": "none (SQLite)"
        if settings.is_sqlite
        else settings.database_pool.describe(),
        "audit_retention_days": settings.audit_retention_days or "forever",
        "user_token_max_lifetime_seconds": settings.user_token_max_lifetime_seconds or "none",
        "redis": "none (in-process)" if not settings.uses_redis else redis,
        "redis_mode": _redis_mode(settings),
        "encryption_keys": _key_source(settings, gateway.key_ring.size),
        "environments": len(await gateway.environments.all()),
        "channels": len(await gateway.channels.all()),
        "data_dir": str(settings.data_dir),
        "rate_limits": _rate_limits(settings.rate_limits),
        "secret_key_rate_limits": _rate_limits(settings.secret_key_rate_limits),
        "cache_ttl_seconds": settings.cache_ttl_seconds,
        "upstream_timeout_seconds": settings.upstream_timeout_seconds,
        "upstream_pacing": f"on (max wait {settings.upstream_wait_seconds:g}s)"
        if settings.upstream_pacing
        else "off",
        "allowed_origins": ",".join(settings.allowed_origins) or "none",
        "auto_migrate": settings.auto_migrate,
        "channels_file": str(settings.channels_file) if settings.channels_file else "none",
    }


def _redis_mode(settings: Settings) -> str:
    if not settings.uses_redis:
        return "none"
    url = settings.redis_url.reveal() if settings.redis_url is not None else None
    return describe_redis(url, settings.redis_topology)


def _key_source(settings: Settings, size: int) -> str:
    if settings.encryption_keys:
        return f"{size} (GATEWAY_ENCRYPTION_KEYS)"
    return f"1 (generated: {settings.data_dir / GENERATED_KEY_FILE})"


def _rate_limits(limits: dict[int, int]) -> str:
    if not limits:
        return "off"
    tiers = " ".join(f"{tier}={rate}/s" for tier, rate in sorted(limits.items()))
    return f"{'knock' if limits == KNOCK_TIERS else 'custom'} ({tiers})"


def warm_imports() -> None:
    """Import DEFERRED_IMPORTS in a daemon thread (the import lock makes a request that needs
    one meanwhile simply wait for it)."""

    def load() -> None:
        for name in DEFERRED_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - a broken install shows on first use
                log.warning("could not load %s ahead of use", name)

    threading.Thread(target=load, name="warm-imports", daemon=True).start()
