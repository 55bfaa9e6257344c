"""The Slack scopes channel listings need, and the answers that name a missing one."""

from __future__ import annotations

from typing import Any

from provider_gateway.errors import GatewayError
from provider_gateway.slack.client import SlackRefusal

# conversations.list needs the read scope of every conversation type it is asked for.
TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}
# What SlackKit's combobox lists (public and private channels), so what auth_check checks.
LISTING_SCOPES = ("channels:read", "groups:read")


def missing_for_listing(scopes: frozenset[str] | None) -> list[str]:
    """The default listing's scopes the token lacks; none when Slack did not say (no header)."""
    if scopes is None:
        return []
    return [scope for scope in LISTING_SCOPES if scope not in scopes]


class MissingScope(GatewayError):
    """The tenant's Slack install lacks a scope: only adding it and reinstalling helps.

    403 like Slack's own refusal of the token, with its own code so that neither a person nor a
    program takes it for the caller's `authorization` (the user token is fine) or for a
    disconnected tenant (`auth_check` still says ok); `missing_scopes` lists what to add.
    """

    status, code, type = 403, "missing_scope", "invalid_request_error"

    def __init__(self, missing: list[str], types: list[str]) -> None:
        self.missing = missing
        plural = len(missing) > 1
        super().__init__(
            f"The Slack app's token lacks the {_listed(missing)} scope{'s' if plural else ''} "
            f"needed to list {_listed(types)} conversations. Add {'them' if plural else 'it'} "
            "to the Slack app's bot token scopes and reinstall the app in this workspace."
        )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "missing_scopes": self.missing}

    @classmethod
    def from_refusal(cls, refusal: SlackRefusal, types: str) -> MissingScope:
        """Slack's `missing_scope` refusal of conversations.list, in terms of what to add."""
        requested = [kind for kind in types.split(",") if kind]
        provided = {s.strip() for s in (refusal.provided or "").split(",") if s.strip()}
        missing = [
            TYPE_SCOPES[kind]
            for kind in requested
            if kind in TYPE_SCOPES and TYPE_SCOPES[kind] not in provided
        ]
        if refusal.provided is None or not missing:
            # Without `provided` (or if it disagrees), Slack's own `needed` is the best answer.
            missing = [s.strip() for s in (refusal.needed or "").split(",") if s.strip()]
        needing = [kind for kind in requested if TYPE_SCOPES.get(kind) in missing] or requested
        return cls(missing or ["(unknown)"], needing)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
