"""Channels: registered Slack apps and Entra apps, with their client secrets encrypted."""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.config import Revealable, Secret
from provider_gateway.crypto import KeyRing, SealedSecret, UndecryptableError
from provider_gateway.errors import Conflict
from provider_gateway.models import Channel, Provider
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import as_utc, utcnow
from provider_gateway.storage.schema import channels

# Channels change rarely (CLI, channels file); every API call looks one up. Only found
# channels are remembered, so a channel added a moment ago is seen at once, and an updated
# or removed one within this many seconds on every replica.
CHANNEL_CACHE_SECONDS = 5.0


class ChannelStore:
    def __init__(self, engine: AsyncEngine, key_ring: KeyRing) -> None:
        self._engine = engine
        self._key_ring = key_ring
        self._recent: dict[str, tuple[float, Channel]] = {}

    async def add(
        self,
        *,
        provider: Provider,
        client_id: str,
        client_secret: Secret,
        app_id: str | None = None,
        channel_id: str | None = None,
        environment_id: str | None = None,
        signing_secret: Secret | None = None,
        actor: str,
    ) -> Channel:
        channel = Channel(
            id=channel_id or str(uuid.uuid4()),
            provider=provider,
            client_id=client_id,
            client_secret=client_secret,
            app_id=app_id,
            environment_id=environment_id,
            created_at=utcnow(),
            signing_secret=signing_secret,
        )
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    channels.insert().values(
                        id=channel.id,
                        environment_id=environment_id,
                        provider=provider,
                        client_id=client_id,
                        client_secret_encrypted=self._key_ring.encrypt(
                            client_secret.reveal().encode("utf-8")
                        ),
                        app_id=app_id,
                        created_at=channel.created_at,
                        signing_secret_encrypted=self._seal(signing_secret),
                    )
                )
                await record(
                    connection,
                    AuditEntry(
                        "channel.created",
                        actor,
                        environment_id=environment_id,
                        channel_id=channel.id,
                        details={"provider": provider, "client_id": client_id},
                    ),
                )
        except IntegrityError:
            raise Conflict(f"channel {channel.id} already exists") from None
        return channel

    async def declare(
        self,
        *,
        channel_id: str,
        provider: Provider,
        client_id: str,
        client_secret: Secret,
        app_id: str | None,
        environment_id: str | None,
        signing_secret: Secret | None = None,
        actor: str,
    ) -> None:
        """Create the channel, or bring an existing one in line with the declaration."""
        existing = await self._load(channel_id)  # fresh, not the cached record
        if existing is None:
            await self.add(
                provider=provider,
                client_id=client_id,
                client_secret=client_secret,
                app_id=app_id,
                channel_id=channel_id,
                environment_id=environment_id,
                signing_secret=signing_secret,
                actor=actor,
            )
            return
        if existing.provider != provider:
            raise Conflict(f"channel {channel_id} exists with provider {existing.provider}")
        unchanged = (existing.client_id, existing.app_id, existing.environment_id) == (
            client_id,
            app_id,
            environment_id,
        ) and self._same_secret(existing.client_secret, client_secret)
        unchanged = unchanged and self._same_secret(existing.signing_secret, signing_secret)
        if unchanged:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                update(channels)
                .where(channels.c.id == channel_id)
                .values(
                    client_id=client_id,
                    client_secret_encrypted=self._key_ring.encrypt(
                        client_secret.reveal().encode("utf-8")
                    ),
                    app_id=app_id,
                    environment_id=environment_id,
                    signing_secret_encrypted=self._seal(signing_secret),
                )
            )
            self._recent.pop(channel_id, None)
            await record(
                connection,
                AuditEntry(
                    "channel.updated",
                    actor,
                    environment_id=environment_id,
                    channel_id=channel_id,
                    details={"provider": provider, "client_id": client_id},
                ),
            )

    async def update(
        self,
        channel: Channel,
        *,
        client_id: str | None = None,
        client_secret: Secret | None = None,
        app_id: str | None = None,
        signing_secret: Secret | None = None,
        actor: str,
    ) -> Channel:
        """Change the given credentials (None: keep); an empty `app_id` clears it."""
        values: dict[str, Any] = {}
        if client_id is not None:
            values["client_id"] = client_id
        if client_secret is not None:
            values["client_secret_encrypted"] = self._seal(client_secret)
        if app_id is not None:
            values["app_id"] = app_id or None
        if signing_secret is not None:
            values["signing_secret_encrypted"] = self._seal(signing_secret)
        async with self._engine.begin() as connection:
            await connection.execute(
                update(channels).where(channels.c.id == channel.id).values(values)
            )
            await record(
                connection,
                AuditEntry(
                    "channel.updated",
                    actor,
                    environment_id=channel.environment_id,
                    channel_id=channel.id,
                    details={
                        "provider": channel.provider,
                        "client_id": values.get("client_id", channel.client_id),
                        "changed": sorted(name.removesuffix("_encrypted") for name in values),
                    },
                ),
            )
        self.forget(channel.id)
        updated = await self._load(channel.id)
        assert updated is not None
        return updated

    def forget(self, channel_id: str) -> None:
        """Drop this process's cached copy (other replicas' expire on their own)."""
        self._recent.pop(channel_id, None)

    @staticmethod
    def _same_secret(stored: Revealable | None, declared: Secret | None) -> bool:
        if stored is None or declared is None:
            return stored is None and declared is None
        try:
            return hmac.compare_digest(stored.reveal(), declared.reveal())
        except UndecryptableError:
            return False

    async def get(self, channel_id: str) -> Channel | None:
        recent = self._recent.get(channel_id)
        if recent is not None and recent[0] > time.monotonic():
            return recent[1]
        channel = await self._load(channel_id)
        if channel is not None:
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[channel_id] = (time.monotonic() + CHANNEL_CACHE_SECONDS, channel)
        return channel

    async def _load(self, channel_id: str) -> Channel | None:
        async with self._engine.connect() as connection:
            query = select(channels).where(channels.c.id == channel_id)
            row = (await connection.execute(query)).mappings().first()
        return self._channel(row) if row else None

    async def all(self) -> list[Channel]:
        async with self._engine.connect() as connection:
            query = select(channels).order_by(channels.c.created_at)
            rows = (await connection.execute(query)).mappings().all()
        return [self._channel(row) for row in rows]

    def _seal(self, secret: Secret | None) -> str | None:
        return self._key_ring.encrypt(secret.reveal().encode("utf-8")) if secret else None

    async def with_signing_secrets(self) -> list[Channel]:
        """Slack channels that can verify Events API requests."""
        async with self._engine.connect() as connection:
            query = select(channels).where(
                channels.c.provider == "slack", channels.c.signing_secret_encrypted.is_not(None)
            )
            rows = (await connection.execute(query)).mappings().all()
        return [self._channel(row) for row in rows]

    def _channel(self, row: Any) -> Channel:
        return Channel(
            id=row["id"],
            provider=row["provider"],
            client_id=row["client_id"],
            client_secret=SealedSecret(row["client_secret_encrypted"], self._key_ring),
            app_id=row["app_id"],
            environment_id=row["environment_id"],
            created_at=as_utc(row["created_at"]),
            signing_secret=(
                SealedSecret(row["signing_secret_encrypted"], self._key_ring)
                if row["signing_secret_encrypted"]
                else None
            ),
        )
