"""What channel data may hold per provider, how it is merged on PUT, and what a browser may see."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)

from provider_gateway.errors import Forbidden, InvalidParams
from provider_gateway.models import CREDENTIAL_KEYS, Provider

# Ids are sent to Slack and Graph later: no control characters (NUL, CR, LF, ...).
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
]


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a GUID like 6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d") from None


Guid = Annotated[str, AfterValidator(_guid)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _connection_kind(value: Any) -> str:
    """Pick the union member by shape; pydantic calls this on raw dicts and on models."""
    if isinstance(value, dict):
        has_webhook = "incoming_webhook" in value
    else:
        has_webhook = hasattr(value, "incoming_webhook")
    return "webhook_connection" if has_webhook else "token_connection"


class IncomingWebhook(_Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^https?://")]


class SlackTokenConnection(_Strict):
    channel_id: Id | None = None
    channel_name: Id | None = None
    user_id: Id | None = None
    access_token: Annotated[str, StringConstraints(max_length=4096)] | None = None

    @model_validator(mode="after")
    def _names_a_destination(self) -> SlackTokenConnection:
        if not (self.channel_id or self.user_id):
            raise ValueError("a connection needs channel_id, user_id or incoming_webhook")
        return self


class SlackWebhookConnection(_Strict):
    incoming_webhook: IncomingWebhook


class SlackToken(_Strict):
    """Knock's `{access_token}`, plus what token rotation and Enterprise Grid need."""

    access_token: Annotated[str, StringConstraints(max_length=4096)] | None
    refresh_token: Annotated[str, StringConstraints(max_length=4096)] | None = None
    expires_at: int | None = None
    token_type: Id | None = None
    scope: Annotated[str, StringConstraints(max_length=4096)] | None = None
    bot_user_id: Id | None = None
    app_id: Id | None = None
    team_id: Id | None = None
    team_name: Annotated[str, StringConstraints(max_length=1024)] | None = None
    enterprise_id: Id | None = None
    enterprise_name: Annotated[str, StringConstraints(max_length=1024)] | None = None
    is_enterprise_install: bool | None = None


class SlackChannelData(_Strict):
    connections: list[
        Annotated[
            Annotated[SlackWebhookConnection, Tag("webhook_connection")]
            | Annotated[SlackTokenConnection, Tag("token_connection")],
            Discriminator(_connection_kind),
        ]
    ] = Field(default_factory=list, max_length=10_000)
    token: SlackToken | None = None


class MsTeamsTokenConnection(_Strict):
    ms_teams_tenant_id: Guid | None = None
    ms_teams_team_id: Id | None = None
    ms_teams_channel_id: Id | None = None
    ms_teams_user_id: Id | None = None

    @model_validator(mode="after")
    def _names_a_destination(self) -> MsTeamsTokenConnection:
        if not (self.ms_teams_channel_id or self.ms_teams_user_id or self.ms_teams_team_id):
            raise ValueError(
                "a connection needs ms_teams_channel_id, ms_teams_user_id or incoming_webhook"
            )
        return self


class MsTeamsWebhookConnection(_Strict):
    incoming_webhook: IncomingWebhook


class MsTeamsChannelData(_Strict):
    connections: list[
        Annotated[
            Annotated[MsTeamsWebhookConnection, Tag("webhook_connection")]
            | Annotated[MsTeamsTokenConnection, Tag("token_connection")],
            Discriminator(_connection_kind),
        ]
    ] = Field(default_factory=list, max_length=10_000)
    ms_teams_tenant_id: Guid | None = None


_MODELS: dict[Provider, type[_Strict]] = {"slack": SlackChannelData, "ms-teams": MsTeamsChannelData}


def validate(provider: Provider, data: object) -> dict[str, Any]:
    """Check `data` against the channel's provider; return it normalised, keys as sent."""
    if not isinstance(data, dict):
        raise InvalidParams.field("data", "must be an object")
    try:
        model = _MODELS[provider].model_validate(data)
    except ValidationError as exc:
        raise InvalidParams(errors=[_field_error(e) for e in exc.errors()]) from None
    return model.model_dump(exclude_unset=True)


def merge(
    provider: Provider, stored: dict[str, Any] | None, incoming: dict[str, Any]
) -> dict[str, Any]:
    """PUT semantics: keys in the body replace stored ones; the credential key is kept unless named.

    A connections update (what SlackKit/TeamsKit comboboxes send) must never disconnect the
    tenant by dropping the token or tenant id that the install flow stored.
    """
    merged = dict(stored or {})
    merged.update(incoming)
    merged.setdefault("connections", [])
    return merged


def check_public_write(
    provider: Provider, stored: dict[str, Any] | None, incoming: dict[str, Any]
) -> dict[str, Any]:
    """Browser (public key) writes may not set credentials; their hidden tokens survive."""
    if CREDENTIAL_KEYS[provider] in incoming:
        raise Forbidden(
            f"{CREDENTIAL_KEYS[provider]} is set by the install flow or a secret key, "
            "not with a public key"
        )
    connections = incoming.get("connections")
    if provider != "slack" or connections is None:
        return incoming
    if any("access_token" in c for c in connections):
        raise Forbidden("connection access tokens can only be set with a secret key")
    hidden = {
        (c.get("channel_id"), c.get("user_id")): c["access_token"]
        for c in (stored or {}).get("connections", [])
        if c.get("access_token")
    }
    restored = []
    for connection in connections:
        token = hidden.get((connection.get("channel_id"), connection.get("user_id")))
        restored.append({**connection, "access_token": token} if token else connection)
    return {**incoming, "connections": restored}


def redact(provider: Provider, data: dict[str, Any]) -> dict[str, Any]:
    """What a public-key caller may see: no token of any kind."""
    visible = {k: v for k, v in data.items() if not (provider == "slack" and k == "token")}
    if "connections" in visible:
        visible["connections"] = [
            {k: v for k, v in c.items() if k != "access_token"} for c in visible["connections"]
        ]
    return visible


def _field_error(error: Any) -> dict[str, str]:
    path = "data"
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"webhook_connection", "token_connection"}:
            continue  # pydantic names the union member it chose; the field path is enough
        else:
            path += f".{part}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return {"field": path, "message": message}
