"""Channel data reads and writes with the caller's permissions applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provider_gateway.auth import CHANNEL_DATA_READ, CHANNEL_DATA_WRITE, Principal
from provider_gateway.channel_data import models
from provider_gateway.errors import NotFound
from provider_gateway.gateway import Gateway
from provider_gateway.models import CREDENTIAL_KEYS, Channel, Recipient
from provider_gateway.storage.audit import AuditEntry


async def get_channel_data(
    gateway: Gateway, principal: Principal, channel_id: str, recipient: Recipient
) -> dict[str, Any]:
    principal.require(CHANNEL_DATA_READ, recipient)
    channel = await gateway.channel_for(principal.environment.id, channel_id)
    data = await gateway.channel_data.get(principal.environment.id, channel.id, recipient)
    if data is None:
        raise NotFound(f"No channel data for {recipient.describe()} on channel {channel_id}")
    return data if principal.is_secret else models.redact(channel.provider, data)


async def authorize_write(
    gateway: Gateway, principal: Principal, channel_id: str, recipient: Recipient
) -> Channel:
    """May `principal` write this recipient's data on this channel? The channel, or an error."""
    principal.require(CHANNEL_DATA_WRITE, recipient)
    return await gateway.channel_for(principal.environment.id, channel_id)


@dataclass(frozen=True)
class PreparedWrite:
    """A checked channel data write: nothing can refuse it any more but the database."""

    channel: Channel
    recipient: Recipient
    incoming: dict[str, Any]


async def prepare_write(
    gateway: Gateway, principal: Principal, channel_id: str, recipient: Recipient, data: object
) -> PreparedWrite:
    """Every check a write makes, before anything is written (so several can be all-or-nothing)."""
    channel = await authorize_write(gateway, principal, channel_id, recipient)
    incoming = models.validate(channel.provider, data)
    if not principal.is_secret:
        models.check_public_write(channel.provider, None, incoming)  # refusals need no stored data
    return PreparedWrite(channel, recipient, incoming)


async def write(gateway: Gateway, principal: Principal, prepared: PreparedWrite) -> dict[str, Any]:
    channel, recipient, incoming = prepared.channel, prepared.recipient, prepared.incoming

    def change(stored: dict[str, Any] | None) -> dict[str, Any]:
        accepted = (
            incoming
            if principal.is_secret
            else models.check_public_write(channel.provider, stored, incoming)
        )
        return models.merge(channel.provider, stored, accepted)

    def audit(old: dict[str, Any] | None, new: dict[str, Any] | None) -> AuditEntry:
        return AuditEntry(
            "channel_data.set",
            principal.actor,
            environment_id=principal.environment.id,
            channel_id=channel.id,
            target=recipient.describe(),
            details={
                "keys": sorted(incoming),
                "connections": len((new or {}).get("connections", [])),
            },
        )

    stored = await gateway.channel_data.update(
        principal.environment.id, channel.id, recipient, change, audit
    )
    assert stored is not None
    return stored if principal.is_secret else models.redact(channel.provider, stored)


async def set_channel_data(
    gateway: Gateway, principal: Principal, channel_id: str, recipient: Recipient, data: object
) -> dict[str, Any]:
    prepared = await prepare_write(gateway, principal, channel_id, recipient, data)
    if recipient.kind == "user":
        # As Knock's: "PUT creates the user if missing", so the users API then finds it.
        await gateway.users.ensure(principal.environment.id, recipient.id)
    return await write(gateway, principal, prepared)


async def unset_channel_data(
    gateway: Gateway, principal: Principal, channel_id: str, recipient: Recipient
) -> None:
    """Idempotent: unsetting absent data succeeds, so a retried DELETE is not an error.

    A public-key (browser) DELETE keeps the install's credential, as its PUT does: dropping a
    Slack token here would leave it live upstream with nobody holding it. Disconnecting is
    revoke_access's job, which revokes it first.
    """
    channel = await authorize_write(gateway, principal, channel_id, recipient)
    credential = CREDENTIAL_KEYS[channel.provider]

    def unset(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if stored is None or principal.is_secret or credential not in stored:
            return None
        return {credential: stored[credential], "connections": []}

    def audit(old: dict[str, Any] | None, new: dict[str, Any] | None) -> AuditEntry | None:
        if old is None or old == new:
            return None
        return AuditEntry(
            "channel_data.unset",
            principal.actor,
            environment_id=principal.environment.id,
            channel_id=channel.id,
            target=recipient.describe(),
            details={"kept": [credential]} if new is not None else {},
        )

    await gateway.channel_data.update(principal.environment.id, channel.id, recipient, unset, audit)
