"""Checks of this deployment itself: database and schema, key ring vs stored data, Redis,
the public URL with the redirect URIs to register, and CORS origins."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from provider_gateway.config import ConfigError, Settings
from provider_gateway.crypto import GENERATED_KEY_FILE, KeyRing, load_key_ring
from provider_gateway.doctor import Check, Status
from provider_gateway.storage.channels import ChannelStore
from provider_gateway.storage.database import (
    create_engine,
    current_revision,
    display_url,
    head_revision,
    sqlite_path,
)
from provider_gateway.storage.key_check import check_all
from provider_gateway.storage.schema import channel_data, channels

REDIRECT_PATHS = {
    "slack": "/providers/slack/authenticate",
    "ms-teams": "/providers/ms-teams/authenticate",
}


@dataclass
class Local:
    """The database-backed checks, and what the app checks need from them."""

    engine: AsyncEngine | None = None
    key_ring: KeyRing | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.engine is not None and self.key_ring is not None

    def channels(self) -> ChannelStore:
        assert self.engine is not None
        assert self.key_ring is not None
        return ChannelStore(self.engine, self.key_ring)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Local]:
        local = cls()
        path = sqlite_path(settings)
        if path is not None and not path.exists():
            local.checks.append(
                Check(
                    "database",
                    "fail",
                    f"no database at {path} (GATEWAY_DATA_DIR is "
                    f"{settings.data_dir}; `serve` or `migrate` creates it)",
                )
            )
            yield local
            return
        engine = create_engine(settings)
        try:
            if await local._database(settings, engine):
                local.engine = engine
                await local._keys(settings, engine)
            yield local
        finally:
            await engine.dispose()

    async def _database(self, settings: Settings, engine: AsyncEngine) -> bool:
        shown = display_url(settings)
        try:
            async with engine.connect() as connection:
                revision = await current_revision(connection)
        except Exception as exc:  # any failure to connect or query is the finding
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.checks.append(Check("database", "fail", f"{shown} unreachable: {reason}"))
            return False
        head = head_revision()
        if revision == head:
            self.checks.append(Check("database", "ok", f"{shown}, schema {revision} (current)"))
            return True
        behind = f"{shown}, schema {revision or 'empty'}, code expects {head}"
        if settings.auto_migrate:
            self.checks.append(Check("database", "warn", f"{behind}: `serve` migrates it"))
        else:
            self.checks.append(
                Check("database", "fail", f"{behind}, GATEWAY_AUTO_MIGRATE=false: run `migrate`")
            )
        return revision is not None

    async def _keys(self, settings: Settings, engine: AsyncEngine) -> None:
        generated = settings.data_dir / GENERATED_KEY_FILE
        if not settings.encryption_keys and settings.is_sqlite and not generated.exists():
            stored = await _stored_secrets(engine)
            status: Status = "fail" if stored else "warn"
            self.checks.append(
                Check(
                    "encryption_keys",
                    status,
                    f"GATEWAY_ENCRYPTION_KEYS unset and no key at {generated}"
                    + (f", but {stored} secrets are stored" if stored else ": serve makes one"),
                )
            )
            return
        try:
            self.key_ring = load_key_ring(settings)
        except ConfigError as error:
            self.checks.append(Check("encryption_keys", "fail", str(error)))
            return
        report = await check_all(engine, self.key_ring)
        problem = report.problem()
        if problem is not None:
            self.checks.append(Check("encryption_keys", "fail", problem))
            return
        source = (
            f"{self.key_ring.size} key(s) in GATEWAY_ENCRYPTION_KEYS"
            if settings.encryption_keys
            else f"the generated key in {generated} (back it up; set GATEWAY_ENCRYPTION_KEYS "
            "in production)"
        )
        detail = (
            f"all {report.checked} stored secrets decrypt with {source}"
            if report.checked
            else f"no secrets stored yet; {source}"
        )
        if report.under_older_keys:
            detail += (
                f"; {report.under_older_keys} still under an older key: run rotate-encryption-key"
            )
        elif self.key_ring.size > 1:
            detail += "; all under the newest key: the older keys can be removed"
        generated_only: Status = "warn" if not settings.encryption_keys else "ok"
        self.checks.append(Check("encryption_keys", generated_only, detail))


async def _stored_secrets(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = 0
        for table in (channels, channel_data):
            count += (
                await connection.execute(select(func.count()).select_from(table))
            ).scalar_one()
    return count


async def redis(settings: Settings) -> Check:
    if not settings.uses_redis:
        if settings.is_sqlite:
            return Check("redis", "ok", "not configured: in-process (one replica, on SQLite)")
        return Check(
            "redis",
            "warn",
            "GATEWAY_REDIS_URL unset with PostgreSQL: replicas share no cache, rate limits or "
            "one-time OAuth states; set it when running more than one",
        )
    from provider_gateway.shared.backends import BackendUnavailable, RedisBackend
    from provider_gateway.shared.redis_client import describe_redis

    url = settings.redis_url.reveal() if settings.redis_url is not None else None
    shown = describe_redis(url, settings.redis_topology)
    backend = RedisBackend.from_settings(settings)
    try:
        await backend.ping()
    except BackendUnavailable as error:
        return Check("redis", "fail", f"{shown} does not answer ({error})")
    finally:
        await backend.close()
    return Check("redis", "ok", f"{shown} answers (key prefix {settings.redis_prefix})")


def public_url(settings: Settings) -> list[Check]:
    origins = Check(
        "allowed_origins",
        "ok" if settings.allowed_origins else "warn",
        ", ".join(settings.allowed_origins)
        or "GATEWAY_ALLOWED_ORIGINS unset: browsers (SlackKit, TeamsKit) are refused by CORS",
    )
    if settings.public_url is None:
        return [
            Check(
                "public_url",
                "warn",
                "GATEWAY_PUBLIC_URL unset: serve uses http://<host>:<port>, which OAuth "
                "redirects reach only on this machine",
            ),
            origins,
        ]
    url = URL(settings.public_url)
    uris = {provider: f"{settings.public_url}{path}" for provider, path in REDIRECT_PATHS.items()}
    register = f"register {uris['slack']} (Slack) and {uris['ms-teams']} (Entra)"
    if url.scheme != "https" and not _loopback(url.host or ""):
        detail = f"{settings.public_url} must be https outside loopback: Slack and Entra refuse "
        return [Check("public_url", "fail", detail + "http redirect URIs"), origins]
    return [
        Check("public_url", "ok", f"{settings.public_url}; {register}", {"redirect_uris": uris}),
        origins,
    ]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
