"""Domain records shared by every layer: environments, channels, recipients."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from provider_gateway.config import Revealable

Provider = Literal["slack", "ms-teams"]
PROVIDER_NAMES: dict[Provider, str] = {"slack": "Slack", "ms-teams": "Microsoft Teams"}
# The install's credential in a tenant's channel data: set by the install flow (or a secret
# key), removed by revoke_access or a provider event.
CREDENTIAL_KEYS: dict[Provider, str] = {"slack": "token", "ms-teams": "ms_teams_tenant_id"}
TENANTS_COLLECTION = "$tenants"


@dataclass(frozen=True)
class Environment:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Channel:
    """A registered Slack app or Entra (Graph) app, addressed by its Knock-style channel id."""

    id: str
    provider: Provider
    client_id: str
    client_secret: Revealable
    app_id: str | None
    environment_id: str | None
    created_at: datetime
    signing_secret: Revealable | None = None  # Slack: verifies Events API requests

    def serves(self, environment_id: str) -> bool:
        return self.environment_id is None or self.environment_id == environment_id


@dataclass(frozen=True)
class Recipient:
    """A user or an object (tenants are objects in `$tenants`) that holds channel data."""

    kind: Literal["user", "object"]
    id: str
    collection: str = ""

    @classmethod
    def user(cls, user_id: str) -> Recipient:
        return cls("user", user_id)

    @classmethod
    def object(cls, collection: str, object_id: str) -> Recipient:
        return cls("object", object_id, collection)

    @property
    def entity_path(self) -> tuple[str, ...]:
        """Path segments of the entity URI that user-token grants are keyed by."""
        if self.kind == "user":
            return ("v1", "users", self.id)
        return ("v1", "objects", self.collection, self.id)

    def describe(self) -> str:
        return "/".join(self.entity_path[1:])
