"""Slack Events API: tokens must not outlive the install they came from.

Requests are signed with the app's signing secret (X-Slack-Signature over
"v0:<timestamp>:<body>", five-minute window); the channel whose secret verifies the request is
the app it came from. `app_uninstalled` removes every token of that workspace (or Grid org),
`tokens_revoked` the tokens of the bot users it names. Slack retries until it gets a 2xx, and
removing an absent token is a no-op, so retries are harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from provider_gateway import inputs
from provider_gateway.errors import InvalidParams, InvalidSignature
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel
from provider_gateway.slack.models import holds_token
from provider_gateway.tenant_credentials import remove_credential

if TYPE_CHECKING:
    from slack_sdk.signature import Clock

log = logging.getLogger(__name__)


class SlackEvents:
    def __init__(self, gateway: Gateway, clock: Callable[[], float] = time.time) -> None:
        self._gateway = gateway
        self._clock = clock

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        channel = await self._verified_channel(body, headers)
        try:
            payload = inputs.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidParams.field("body", "is not valid JSON") from None
        if not isinstance(payload, dict):
            raise InvalidParams.field("body", "must be a JSON object")
        if payload.get("type") == "url_verification":
            return {"challenge": str(payload.get("challenge", ""))}
        event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
        if payload.get("type") != "event_callback" or not event:
            return {"ok": True}
        app_id = payload.get("api_app_id")
        if channel.app_id and app_id is not None and app_id != channel.app_id:
            return {"ok": True}  # verified, but about another app: nothing of ours to change
        kind = event.get("type")
        if kind == "app_uninstalled":
            removed = await self._forget(channel, payload, bots=None, reason=kind)
        elif kind == "tokens_revoked":
            tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
            named = (tokens or {}).get("bot")
            bots = {str(bot) for bot in named} if isinstance(named, list) else set()
            removed = await self._forget(channel, payload, bots=bots, reason=kind) if bots else 0
        else:
            return {"ok": True}
        log.info("slack event handled", extra={"event": kind, "tokens_removed": removed})
        return {"ok": True}

    async def _verified_channel(self, body: bytes, headers: Mapping[str, str]) -> Channel:
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise InvalidSignature()
        try:
            int(timestamp)
            body.decode("utf-8")
        except ValueError:  # UnicodeDecodeError included
            # slack-sdk calls int() on the timestamp and decodes the body to check the
            # signature: a 500, unsigned, for anyone. Slack sends an integer and UTF-8 JSON.
            raise InvalidSignature() from None
        from slack_sdk.signature import SignatureVerifier  # loaded on first use: see serving

        for channel in await self._gateway.channels.with_signing_secrets():
            assert channel.signing_secret is not None
            clock = cast("Clock", _Clock(self._clock))  # it only calls now()
            verifier = SignatureVerifier(channel.signing_secret.reveal(), clock=clock)
            if verifier.is_valid(body, timestamp, signature):  # constant-time, 5-minute window
                return channel
        raise InvalidSignature()

    async def _forget(
        self, channel: Channel, payload: dict[str, Any], *, bots: set[str] | None, reason: str
    ) -> int:
        team_id, enterprise_id = payload.get("team_id"), payload.get("enterprise_id")
        removed = 0
        for environment_id, tenant, data in await self._gateway.channel_data.for_slack_install(
            channel.id, team_id=team_id, enterprise_id=enterprise_id
        ):
            token = data.get("token")
            if not isinstance(token, dict) or not _matches(token, team_id, enterprise_id, bots):
                continue
            gone = token.get("access_token")
            await remove_credential(
                self._gateway,
                environment_id=environment_id,
                channel=channel,
                tenant=tenant,
                still_current=holds_token(gone),
                actor=f"slack:{reason}",
                details={"team_id": team_id, "enterprise_id": enterprise_id},
                audit_only_if_removed=True,
            )
            removed += 1
        return removed


def _matches(
    token: dict[str, Any], team_id: object, enterprise_id: object, bots: set[str] | None
) -> bool:
    same_install = (team_id and token.get("team_id") == team_id) or (
        token.get("is_enterprise_install")
        and enterprise_id
        and token.get("enterprise_id") == enterprise_id
    )
    return bool(same_install) and (bots is None or token.get("bot_user_id") in bots)


class _Clock:
    """slack-sdk's verifier asks its clock (a slack_sdk.signature.Clock) for now(); ours is
    injectable for tests."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()
