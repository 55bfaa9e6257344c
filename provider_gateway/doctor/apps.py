"""Each channel's app credentials, proved against the provider without changing anything.

Slack: `oauth.v2.access` with a code that cannot exist. Slack checks the client id and
secret before the code, so `invalid_code` means both are right; `invalid_client_id` and
`bad_client_secret` say which is wrong. Entra: a client-credentials token for one tenant
connected through the channel, by the same code path requests use (msal, GATEWAY_CA_BUNDLE).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from provider_gateway.config import Settings
from provider_gateway.crypto import UndecryptableError
from provider_gateway.doctor import Check
from provider_gateway.doctor.local import Local
from provider_gateway.errors import GatewayError
from provider_gateway.models import Channel
from provider_gateway.storage.connections import Connections

if TYPE_CHECKING:
    from provider_gateway.slack.client import SlackClient

DUMMY_CODE = "provider-gateway-doctor-not-a-code"
_SLACK_WRONG = {
    "invalid_client_id": "Slack knows no app with this client id",
    "bad_client_secret": "Slack refuses the client secret",
}
# What an operator does about the Entra refusals a wrong registration causes.
_ENTRA_HINTS = {
    "AADSTS700016": "no app with this client id in that directory",
    "AADSTS7000215": "the client secret is wrong",
    "AADSTS7000222": "the client secret has expired",
    "AADSTS700027": "the certificate is not registered on the app",
    "AADSTS7000229": "the app has no service principal there: the tenant must consent again",
    "AADSTS90002": "no such tenant",
}


async def app_credentials(settings: Settings, local: Local) -> list[Check]:
    channels = await local.channels().all()
    if not channels:
        return [Check("channels", "warn", "none registered yet (channels add slack|ms-teams)")]
    from provider_gateway.http_client import create_session
    from provider_gateway.slack.client import SlackClient

    checks = []
    async with create_session(settings) as session:
        slack = SlackClient(session, settings.slack_api_url)
        for channel in channels:
            name = f"channel {channel.id}"
            try:
                if channel.provider == "slack":
                    checks.append(await _slack(name, channel, slack))
                else:
                    checks.append(await _entra(name, channel, settings, local))
            except UndecryptableError:
                checks.append(Check(name, "fail", "its client secret does not decrypt"))
    return checks


async def _slack(name: str, channel: Channel, slack: SlackClient) -> Check:
    from provider_gateway.slack.client import SlackRefusal

    label = f"Slack app {channel.client_id}"
    try:
        await slack.oauth_v2_access(channel.client_id, channel.client_secret.reveal(), DUMMY_CODE)
    except SlackRefusal as refusal:
        if refusal.error == "invalid_code":
            return Check(name, "ok", f"{label}: client id and secret accepted by Slack")
        wrong = _SLACK_WRONG.get(refusal.error)
        if wrong is not None:
            return Check(name, "fail", f"{label}: {wrong} ({refusal.error})")
        return Check(name, "warn", f"{label}: Slack answered {refusal.error}")
    except GatewayError as error:
        return Check(name, "warn", f"{label}: could not ask Slack ({error.message})")
    return Check(name, "warn", f"{label}: Slack accepted a dummy code, which it should not")


async def _entra(name: str, channel: Channel, settings: Settings, local: Local) -> Check:
    from provider_gateway.ms_teams.credentials import GraphTokens, TokenRefused
    from provider_gateway.shared.state import SharedLocks, SharedState

    assert local.engine is not None
    assert local.key_ring is not None
    label = f"Entra app {channel.client_id}"
    connections = await Connections(local.engine, local.key_ring).of_channel(channel, limit=1)
    if not connections:
        return Check(name, "warn", f"{label}: no tenant connected yet, nothing to test against")
    tenant = str(connections[0].credential)
    state = SharedState(None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="doctor-msal") as threads:
        tokens = GraphTokens(settings, SharedLocks(state), threads, state, local.key_ring)
        try:
            await tokens.token(channel, tenant)
        except TokenRefused as refusal:
            hint = _ENTRA_HINTS.get(refusal.reason, "see Microsoft's AADSTS error reference")
            return Check(
                name,
                "fail",
                f"{label}: Entra refused a token for tenant {tenant}: {refusal.reason} ({hint})",
            )
        except GatewayError as error:
            return Check(name, "warn", f"{label}: could not ask Entra ({error.message})")
        finally:
            tokens.close()
    return Check(name, "ok", f"{label}: Entra issued an app token for tenant {tenant}")
