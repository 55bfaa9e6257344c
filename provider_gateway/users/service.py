"""Users with the caller's permissions applied: identify, get, delete, list."""

from __future__ import annotations

import json
from typing import Any

from provider_gateway.auth import Principal
from provider_gateway.channel_data import service as channel_data
from provider_gateway.errors import Forbidden, InvalidParams, NotFound
from provider_gateway.gateway import Gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.audit import AuditEntry
from provider_gateway.storage.users import Properties
from provider_gateway.users import listing, models


async def identify(
    gateway: Gateway, principal: Principal, user_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Create the user or merge what the body names; inline channel data is written as the
    channel data API writes it, and only once every part of the body has been checked."""
    may_act_for(principal, models.identifier("user_id", user_id))
    request = models.identify_request(user_id, body)
    recipient = Recipient.user(user_id)
    writes = await _prepared_channel_data(gateway, principal, recipient, request.channel_data)
    limit = gateway.settings.max_body_bytes

    def change(stored: Properties | None) -> Properties:
        new = models.merged(stored, request.changes)
        if len(json.dumps(new)) > limit:
            raise InvalidParams.field(
                "body", f"would make the user's properties larger than {limit} bytes"
            )
        return new

    user = await gateway.users.merge(principal.environment.id, user_id, change)
    for prepared in writes:
        await channel_data.write(gateway, principal, prepared)
    return models.user_json(user)


async def get_user(gateway: Gateway, principal: Principal, user_id: str) -> dict[str, Any]:
    may_act_for(principal, models.identifier("user_id", user_id))
    user = await gateway.users.get(principal.environment.id, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return models.user_json(user)


async def delete_user(gateway: Gateway, principal: Principal, user_id: str) -> None:
    """Idempotent, as unsetting channel data is: deleting an absent user succeeds."""
    models.identifier("user_id", user_id)
    if not principal.is_secret:
        raise Forbidden("Deleting a user needs a secret key")

    def audit(existed: bool, channel_data_removed: int) -> AuditEntry | None:
        if not existed and not channel_data_removed:
            return None
        return AuditEntry(
            "user.deleted",
            principal.actor,
            environment_id=principal.environment.id,
            target=Recipient.user(user_id).describe(),
            details={"channel_data_removed": channel_data_removed},
        )

    await gateway.users.delete(principal.environment.id, user_id, audit)


async def list_users(
    gateway: Gateway, principal: Principal, query: listing.ListQuery
) -> dict[str, Any]:
    if not principal.is_secret:
        raise Forbidden("Listing users needs a secret key")
    page = await gateway.users.page(
        principal.environment.id,
        limit=query.page_size,
        descending=query.descending,
        after=query.after,
        before=query.before,
    )
    return listing.page_json(page, query.page_size)


def may_act_for(principal: Principal, user_id: str) -> None:
    if not principal.is_secret and principal.user_id != user_id:
        raise Forbidden("A user token may only identify and read the user it names (sub)")


async def _prepared_channel_data(
    gateway: Gateway, principal: Principal, recipient: Recipient, entries: dict[str, object]
) -> list[channel_data.PreparedWrite]:
    """Every entry checked as the channel data API checks it; the 422 names each bad one."""
    prepared: list[channel_data.PreparedWrite] = []
    errors: list[dict[str, str]] = []
    for channel_id, data in entries.items():
        field = f"channel_data.{channel_id}"
        try:
            models.identifier("channel_data", channel_id)
            prepared.append(
                await channel_data.prepare_write(gateway, principal, channel_id, recipient, data)
            )
        except NotFound:
            errors.append({"field": field, "message": "is not a channel of this environment"})
        except InvalidParams as invalid:
            errors += [
                {**error, "field": field + error["field"].removeprefix("data")}
                if error["field"].startswith("data")
                else error
                for error in invalid.errors
            ]
    if errors:
        raise InvalidParams(errors=errors)
    return prepared
