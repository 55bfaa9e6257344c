"""The service's resources, built once from `Settings` and shared by the app and the CLI."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway import inputs
from provider_gateway.config import Settings
from provider_gateway.crypto import KeyRing, UndecryptableError, load_key_ring
from provider_gateway.errors import NotFound
from provider_gateway.models import PROVIDER_NAMES, Channel, Provider
from provider_gateway.storage.audit import AuditLog
from provider_gateway.storage.channel_data import ChannelDataStore
from provider_gateway.storage.channels import ChannelStore
from provider_gateway.storage.credentials import CredentialStore
from provider_gateway.storage.database import create_engine, migrate
from provider_gateway.storage.environments import EnvironmentStore
from provider_gateway.storage.key_check import check_sample
from provider_gateway.storage.key_pairs import KeyPairStore
from provider_gateway.storage.users import UserStore

if TYPE_CHECKING:
    from provider_gateway.auth import Authenticator


@dataclass(frozen=True)
class Gateway:
    settings: Settings
    engine: AsyncEngine
    key_ring: KeyRing
    environments: EnvironmentStore
    credentials: CredentialStore
    channels: ChannelStore
    channel_data: ChannelDataStore
    users: UserStore
    audit: AuditLog
    key_pairs: KeyPairStore

    @functools.cached_property
    def authenticator(self) -> Authenticator:
        """Built on first use: the CLI never authenticates, and JOSE takes a while to import."""
        from provider_gateway.auth import Authenticator

        return Authenticator(
            self.credentials, max_token_lifetime=self.settings.user_token_max_lifetime_seconds
        )

    async def channel_for(
        self, environment_id: str, channel_id: str, provider: Provider | None = None
    ) -> Channel:
        """The channel if it serves this environment (and is of `provider`), else 404."""
        channel = await self.channels.get(channel_id) if inputs.is_identifier(channel_id) else None
        if channel is None or not channel.serves(environment_id):
            raise NotFound(f"Channel {channel_id} not found")
        if provider is not None and channel.provider != provider:
            raise NotFound(f"Channel {channel_id} is not a {PROVIDER_NAMES[provider]} channel")
        return channel


@asynccontextmanager
async def open_gateway(settings: Settings, *, run_migrations: bool) -> AsyncIterator[Gateway]:
    key_ring = load_key_ring(settings)
    engine = create_engine(settings)
    try:
        if run_migrations:
            await migrate(engine, key_ring)
        yield Gateway(
            settings=settings,
            engine=engine,
            key_ring=key_ring,
            environments=EnvironmentStore(engine),
            credentials=CredentialStore(engine),
            channels=ChannelStore(engine, key_ring),
            channel_data=ChannelDataStore(engine, key_ring),
            users=UserStore(engine, key_ring),
            audit=AuditLog(engine, key_ring),
            key_pairs=KeyPairStore(engine),
        )
    finally:
        await engine.dispose()


async def refuse_unreadable_data(gateway: Gateway) -> None:
    """Serving with a key ring that cannot read the stored data answers every request with
    an error; refuse to start instead (see `storage.key_check` for what is sampled)."""
    problem = (await check_sample(gateway.engine, gateway.key_ring)).problem()
    if problem is not None:
        raise UndecryptableError(problem)
