"""A blind index of Slack installs on channel data rows, so a Slack event finds its
workspace's rows without decrypting any other tenant's.

Each row keeps an HMAC-SHA256 of its Slack token's `team_id` (and of `enterprise_id` for an
org-wide install) under a key derived from the newest encryption key, plus the id of that key.
A lookup computes the HMAC under every key of the ring, so rows indexed before a key was added
are found until `rotate-encryption-key` re-indexes them. Candidates are still decrypted and
checked: the index only narrows the search, it never decides alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import ColumnElement, or_

from provider_gateway.crypto import KeyRing
from provider_gateway.storage.schema import channel_data

PURPOSE = b"provider-gateway channel_data blind index v1"
# 128 bits: a collision only costs one extra decryption, since candidates are checked.
_HMAC_CHARS = 32


class BlindIndex:
    def __init__(self, key_ring: KeyRing) -> None:
        self._keys = key_ring.derive(PURPOSE)
        self.current_key_id = _key_id(self._keys[0])

    def columns(self, payload: dict[str, Any] | None) -> dict[str, str | None]:
        """The index columns of a row holding `payload`, under the newest key."""
        team_id, enterprise_id = slack_install(payload)
        key = self._keys[0]
        return {
            "slack_team_hmac": _hmac(key, "team", team_id) if team_id else None,
            "slack_enterprise_hmac": _hmac(key, "enterprise", enterprise_id)
            if enterprise_id
            else None,
            "key_id": self.current_key_id,
        }

    def matching(self, team_id: object, enterprise_id: object) -> ColumnElement[bool]:
        """Rows that may hold a token of this workspace (or org), under any key of the ring,
        and rows not indexed yet (written before the index existed, until backfilled)."""
        conditions: list[ColumnElement[bool]] = [channel_data.c.key_id.is_(None)]
        if team_id:
            candidates = [_hmac(key, "team", team_id) for key in self._keys]
            conditions.append(channel_data.c.slack_team_hmac.in_(candidates))
        if enterprise_id:
            candidates = [_hmac(key, "enterprise", enterprise_id) for key in self._keys]
            conditions.append(channel_data.c.slack_enterprise_hmac.in_(candidates))
        return or_(*conditions)


def slack_install(payload: dict[str, Any] | None) -> tuple[object, object]:
    """The (team_id, enterprise_id) a Slack event would match this data's token by; the
    enterprise only for an org-wide install, as slack.events matches them."""
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, dict):
        return None, None
    enterprise_id = token.get("enterprise_id") if token.get("is_enterprise_install") else None
    return token.get("team_id"), enterprise_id


def _hmac(key: bytes, kind: str, value: object) -> str:
    # Canonical JSON keeps the index as exact as the equality it stands for ("1" is not 1).
    message = kind.encode() + b"\x1f" + json.dumps(value, sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:_HMAC_CHARS]


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:8]
