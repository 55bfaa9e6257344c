"""The Graph application permissions TeamsKit's listings need, read from the app token, and
the answers that name a missing one."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from provider_gateway.errors import GatewayError
from provider_gateway.ms_teams.client import GraphRefusal

TEAMS = "Team.ReadBasic.All"
CHANNELS = "Channel.ReadBasic.All"
# The application permissions Graph accepts for each listing, least privileged first (the
# permission tables of Graph's "List teams" and "List channels" reference pages). Knock's
# Teams setup asks for the first of each.
ACCEPTED: dict[str, tuple[str, ...]] = {
    TEAMS: (TEAMS, "TeamSettings.Read.All", "TeamSettings.ReadWrite.All"),
    CHANNELS: (
        CHANNELS,
        "ChannelSettings.Read.All",
        "ChannelSettings.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
    ),
}
_LISTS = {TEAMS: "teams", CHANNELS: "channels"}
_HOW = (
    "Add {them} to the Entra app (API permissions, Microsoft Graph, Application permissions) "
    "and have an administrator of this tenant consent again. New grants can take several "
    "minutes to reach Microsoft's app tokens, so an answer right after granting may still "
    "show {them} missing."
)


def app_roles(access_token: str) -> frozenset[str] | None:
    """The `roles` claim of a Graph app token; None if the token is not a readable JWT.

    Read without verifying the signature: the token came straight from Entra's token endpoint
    over TLS (msal, trusting only the system store and GATEWAY_CA_BUNDLE), and these claims only
    explain a refusal to the customer; they never authorize anything here.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    roles = claims.get("roles", []) if isinstance(claims, dict) else None
    if not isinstance(roles, list):
        return None
    return frozenset(role for role in roles if isinstance(role, str))


def missing(roles: frozenset[str] | None) -> list[str]:
    """Listing permissions the roles grant in no accepted form; none when roles are unknown."""
    if roles is None:
        return []
    return [needed for needed, accepted in ACCEPTED.items() if not roles.intersection(accepted)]


def is_missing_role(refusal: GraphRefusal) -> bool:
    """Graph's refusal for want of an application permission: 403 `Forbidden` "Missing role
    permissions on the request…" (Teams APIs) or `Authorization_RequestDenied` (directory)."""
    return refusal.status == 403 and (
        refusal.code == "Authorization_RequestDenied"
        or "missing role permissions" in refusal.message.lower()
    )


def reason(absent: list[str]) -> str:
    """What auth_check tells a customer whose tenant lacks `absent`."""
    plural = len(absent) > 1
    return (
        f"The Entra app's application permissions in this tenant lack {_listed(absent)}, "
        f"needed to list {_listed([_LISTS[p] for p in absent])}. "
        + _HOW.format(them="them" if plural else "it")
    )


class MissingPermission(GatewayError):
    """Graph refused a listing for want of an application permission in this tenant.

    403 like Graph's refusal, with its own code so that it is not taken for the caller's
    `authorization` (the user token is fine); `missing_permissions` lists what to grant.
    """

    status, code, type = 403, "missing_permission", "invalid_request_error"

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(
            f"Microsoft Graph refused to list {_LISTS[permission]}: the Entra app lacks the "
            f"{permission} application permission in this tenant. " + _HOW.format(them="it")
        )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "missing_permissions": [self.permission]}


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
