"""Whose Slack rate limit a call spends, and how much of it the gateway uses.

Slack applies its limits per method, per workspace (or Enterprise Grid org), per app (docs:
Web API rate limits); a tier names the floor of calls per minute each method allows.
oauth.v2.access belongs to no workspace and is not paced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provider_gateway.shared.pacing import Pace, within

# Budgets from each method's tier, one call short of its per-minute floor (see `within`).
METHOD_BUDGETS = {
    "conversations.list": within(20, 60.0),  # tier 2: 20+ per minute
    "auth.revoke": within(50, 60.0),  # tier 3: 50+ per minute
    "auth.test": within(100, 60.0),  # special, "hundreds per minute": paced as tier 4
}


@dataclass(frozen=True)
class Workspace:
    """A Slack app's install in one workspace or Grid org: what Slack counts calls against."""

    app: str  # the app's client id
    install: str  # team id; enterprise id for an org-wide install; else a digest of the token

    @classmethod
    def of(cls, client_id: str, token: Mapping[str, Any]) -> Workspace:
        """The install a stored token (or an oauth.v2.access reply's fields) belongs to."""
        enterprise_id, team_id = token.get("enterprise_id"), token.get("team_id")
        if token.get("is_enterprise_install") and enterprise_id:
            return cls(client_id, f"E:{enterprise_id}")
        if team_id:
            return cls(client_id, f"T:{team_id}")
        # A secret key may store a bare access_token: one budget per token, then.
        digest = hashlib.sha256(str(token.get("access_token", "")).encode()).hexdigest()
        return cls(client_id, f"token:{digest[:32]}")

    def pace(self, method: str) -> Pace:
        key = hashlib.sha256(f"{self.app}\x1f{self.install}\x1f{method}".encode()).hexdigest()
        return Pace(f"pace:slack:{key[:40]}", METHOD_BUDGETS[method])
