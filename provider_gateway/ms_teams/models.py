"""Teams wire shapes: TeamsKit's state, OData options, the Knock teams/channels replies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provider_gateway.errors import InvalidParams
from provider_gateway.install import state_fields
from provider_gateway.models import Recipient
from provider_gateway.web import wire

TEAM_FIELDS = ("id", "displayName", "description")
CHANNEL_FIELDS = (
    "id",
    "displayName",
    "description",
    "createdDateTime",
    "isArchived",
    "membershipType",
)


def odata_options(options: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """The OData options Knock forwards, verbatim (`$filter`, `$select`, …)."""
    forwarded = {name: options[name] for name in allowed if options.get(name)}
    if "$top" in forwarded:
        forwarded["$top"] = str(wire.integer(options, "$top", 0, low=1, high=999))
    return forwarded


def teams_response(teams: list[dict[str, Any]], skip_token: str | None) -> dict[str, Any]:
    return {
        "ms_teams_teams": [_pick(team, TEAM_FIELDS) for team in teams if team.get("id")],
        "skip_token": skip_token,
    }


def channels_response(channels: list[dict[str, Any]], *, defaults: bool) -> dict[str, Any]:
    """Knock's channels reply. With `defaults` (the caller sent no `$filter`), archived and
    private channels are left out, as Knock documents: TeamsKit's combobox shows what it gets,
    and the bot can post to neither."""
    return {
        "ms_teams_channels": [
            _pick(c, CHANNEL_FIELDS)
            for c in channels
            if c.get("id") and not (defaults and _hidden_by_default(c))
        ]
    }


def _hidden_by_default(channel: Mapping[str, Any]) -> bool:
    return channel.get("isArchived") is True or channel.get("membershipType") == "private"


def _pick(item: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    picked = {field: item[field] for field in fields if field in item}
    picked.setdefault("displayName", "")
    return picked


def tenant_guid(value: str | None) -> str | None:
    """The tenant id as a canonical GUID, or None: Microsoft's `tenant` value can be forged."""
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def required_team_id(query: Mapping[str, str]) -> str:
    """A Teams team id (a Microsoft 365 group id: a GUID); it goes into a Graph URL path, so
    nothing else may pass (`../users?x=` once reached /v1.0/users)."""
    team_id = query.get("team_id")
    if not team_id:
        raise InvalidParams.field("team_id", "is required")
    guid = tenant_guid(team_id)
    if guid is None:
        raise InvalidParams.field("team_id", "must be a team id (a GUID)")
    return guid


@dataclass(frozen=True)
class TeamsState:
    """The `state` TeamsKit builds (useMsTeamsAuth.ts): plain JSON, no nonce."""

    redirect_url: str | None
    tenant: Recipient | None
    channel_id: str | None
    public_key: str | None
    user_token: str | None

    @classmethod
    def parse(cls, raw: str | None) -> TeamsState | None:
        parsed = state_fields(raw, "ms_teams_tenant_object")
        if parsed is None:
            return None
        fields, tenant = parsed
        return cls(
            redirect_url=fields.get("redirect_url"),
            tenant=tenant,
            channel_id=fields.get("channel_id"),
            public_key=fields.get("public_key"),
            user_token=fields.get("user_token"),
        )
