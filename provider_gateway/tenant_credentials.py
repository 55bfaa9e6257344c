"""The install's credential on a tenant (Slack's `token`, Teams' `ms_teams_tenant_id`), written
or removed with the tenant's connections left as they are, audited in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from provider_gateway.gateway import Gateway
from provider_gateway.models import CREDENTIAL_KEYS, Channel, Recipient
from provider_gateway.storage.audit import AuditEntry


async def store_credential(
    gateway: Gateway,
    *,
    environment_id: str,
    channel: Channel,
    tenant: Recipient,
    value: Any,
    actor: str,
    details: Mapping[str, Any],
    sealed: Mapping[str, Any] | None = None,
) -> Any:
    """Store `value` as the tenant's credential; returns the credential it replaced, if any."""
    key = CREDENTIAL_KEYS[channel.provider]
    replaced: list[Any] = [None]  # what the committed attempt saw (the change may be retried)

    def put(stored: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(stored or {})
        replaced[0] = data.get(key)
        data[key] = value
        data.setdefault("connections", [])
        return data

    entry = _entry("install", actor, environment_id, channel, tenant, details, sealed)
    await gateway.channel_data.update(
        environment_id, channel.id, tenant, put, lambda old, new: entry
    )
    return replaced[0]


async def remove_credential(
    gateway: Gateway,
    *,
    environment_id: str,
    channel: Channel,
    tenant: Recipient,
    still_current: Callable[[Any], bool],
    actor: str,
    details: Mapping[str, Any],
    sealed: Mapping[str, Any] | None = None,
    audit_only_if_removed: bool = False,
) -> None:
    """Remove the credential if `still_current(stored credential)`: one stored meanwhile by a
    reinstall is another install's, and stays."""
    key = CREDENTIAL_KEYS[channel.provider]

    def forget(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if stored is None:
            return None
        if key in stored and still_current(stored[key]):
            stored.pop(key)
        stored.setdefault("connections", [])
        return stored

    entry = _entry("revoke", actor, environment_id, channel, tenant, details, sealed)

    def audit(old: dict[str, Any] | None, new: dict[str, Any] | None) -> AuditEntry | None:
        removed = old is not None and key in old and (new is None or key not in new)
        return entry if removed or not audit_only_if_removed else None

    await gateway.channel_data.update(environment_id, channel.id, tenant, forget, audit)


def _entry(
    action: str,
    actor: str,
    environment_id: str,
    channel: Channel,
    tenant: Recipient,
    details: Mapping[str, Any],
    sealed: Mapping[str, Any] | None,
) -> AuditEntry:
    return AuditEntry(
        action,
        actor,
        environment_id=environment_id,
        channel_id=channel.id,
        target=tenant.describe(),
        details={"provider": channel.provider, **details},
        sealed=sealed or {},
    )
