"""Slack wire shapes: listing options, the Knock channels reply, tokens, SlackKit's state."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provider_gateway.errors import InvalidParams
from provider_gateway.install import state_fields
from provider_gateway.models import Recipient
from provider_gateway.web import wire

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
DEFAULT_TYPES = "public_channel,private_channel"
CHANNEL_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


@dataclass(frozen=True)
class ChannelQuery:
    cursor: str | None
    limit: int
    exclude_archived: bool
    types: str
    team_id: str | None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> ChannelQuery:
        remembered = tuple(options.items())
        if sum(len(name) + len(value) for name, value in remembered) <= _MAX_REMEMBERED_TEXT:
            return _remembered_query(remembered)
        return cls._parsed(options)

    @classmethod
    def _parsed(cls, options: Mapping[str, str]) -> ChannelQuery:
        types = options.get("types") or DEFAULT_TYPES
        requested = [part.strip() for part in types.split(",") if part.strip()]
        unknown = [part for part in requested if part not in CHANNEL_TYPES]
        if unknown or not requested:
            raise InvalidParams.field(
                "query_options.types",
                f"must be a comma-separated subset of {sorted(CHANNEL_TYPES)}",
            )
        return cls(
            cursor=options.get("cursor") or None,
            limit=wire.integer(options, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
            exclude_archived=wire.boolean(options, "exclude_archived", True),
            types=",".join(requested),
            team_id=options.get("team_id") or None,
        )


# Valid option sets by their text, most requests repeating one (parsing was a twentieth of a
# cached hit). Errors are never kept (lru_cache keeps no exception). At most about 4 MB.
_MAX_QUERIES, _MAX_REMEMBERED_TEXT = 4096, 1024


@functools.lru_cache(maxsize=_MAX_QUERIES)
def _remembered_query(options: tuple[tuple[str, str], ...]) -> ChannelQuery:
    return ChannelQuery._parsed(dict(options))


def channels_response(reply: Mapping[str, Any], *, default_team_id: str | None) -> dict[str, Any]:
    channels = [
        {
            "id": channel["id"],
            "name": channel.get("name") or "",
            "is_private": bool(channel.get("is_private", False)),
            "is_im": bool(channel.get("is_im", False)),
            "context_team_id": channel.get("context_team_id") or default_team_id or "",
        }
        for channel in reply.get("channels") or []
        if isinstance(channel, dict) and channel.get("id")
    ]
    next_cursor = (reply.get("response_metadata") or {}).get("next_cursor") or None
    return {"slack_channels": channels, "next_cursor": next_cursor}


def holds_token(access_token: object) -> Callable[[Any], bool]:
    """True while a stored token is still `access_token` (not one a reinstall put there)."""
    return lambda stored: isinstance(stored, dict) and stored.get("access_token") == access_token


def installed_token(reply: Mapping[str, Any], *, now: int) -> dict[str, Any]:
    """What oauth.v2.access gave us: Knock's `{access_token}` plus what rotation and Enterprise
    Grid need later. The user's own token (authed_user.access_token) is not kept."""
    team = reply.get("team") or {}
    enterprise = reply.get("enterprise") or {}
    token: dict[str, Any] = {
        "access_token": reply["access_token"],
        "token_type": reply.get("token_type"),
        "scope": reply.get("scope"),
        "bot_user_id": reply.get("bot_user_id"),
        "app_id": reply.get("app_id"),
        "team_id": team.get("id"),
        "team_name": team.get("name"),
        "enterprise_id": enterprise.get("id"),
        "enterprise_name": enterprise.get("name"),
        "is_enterprise_install": bool(reply.get("is_enterprise_install", False)),
    }
    if reply.get("refresh_token") and reply.get("expires_in"):
        token["refresh_token"] = reply["refresh_token"]
        token["expires_at"] = now + int(reply["expires_in"])
    return {key: value for key, value in token.items() if value is not None}


def refreshed_token(
    token: Mapping[str, Any], reply: Mapping[str, Any], *, now: int
) -> dict[str, Any]:
    return {
        **token,
        "access_token": reply["access_token"],
        "refresh_token": reply.get("refresh_token") or token.get("refresh_token"),
        "expires_at": now + int(reply.get("expires_in") or 43_200),
    }


@dataclass(frozen=True)
class SlackState:
    """The `state` SlackKit builds: plain JSON (useSlackAuth.ts); absent keys allowed."""

    nonce: str | None
    redirect_url: str | None
    tenant: Recipient | None
    channel_id: str | None
    public_key: str | None
    user_token: str | None
    branch_slug: str | None

    @classmethod
    def parse(cls, raw: str | None) -> SlackState | None:
        parsed = state_fields(raw, "access_token_object")
        if parsed is None:
            return None
        fields, tenant = parsed
        return cls(
            nonce=fields.get("nonce"),
            redirect_url=fields.get("redirect_url"),
            tenant=tenant,
            channel_id=fields.get("channel_id"),
            public_key=fields.get("public_key"),
            user_token=fields.get("user_token"),
            branch_slug=fields.get("branch_slug"),
        )
