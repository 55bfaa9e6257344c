"""HTTP handlers for Slack: parse the wire forms, call the service, render Knock's shapes."""

from __future__ import annotations

from aiohttp import web

from provider_gateway.slack.events import SlackEvents
from provider_gateway.slack.models import ChannelQuery
from provider_gateway.slack.oauth import SlackInstaller
from provider_gateway.slack.service import SlackService
from provider_gateway.web import wire
from provider_gateway.web.appkeys import METRICS, PRINCIPAL
from provider_gateway.web.idempotency import authorized_by
from provider_gateway.web.oauth_page import outcome_response

routes = web.RouteTableDef()
SLACK = web.AppKey("slack", SlackService)
SLACK_INSTALLER = web.AppKey("slack_installer", SlackInstaller)
SLACK_EVENTS = web.AppKey("slack_events", SlackEvents)

TENANT_PARAM = "access_token_object"


@routes.get("/v1/providers/slack/{channel_id}/auth_check")
async def auth_check(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    result = await request.app[SLACK].auth_check(
        request[PRINCIPAL], request.match_info["channel_id"], tenant
    )
    return web.json_response(result)


@routes.get("/v1/providers/slack/{channel_id}/channels")
async def list_channels(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    query = ChannelQuery.from_options(wire.query_options(request.query))
    result = await request.app[SLACK].list_channels(
        request[PRINCIPAL], request.match_info["channel_id"], tenant, query
    )
    return web.Response(body=result, content_type="application/json")


async def _may_revoke(request: web.Request) -> None:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    await request.app[SLACK].authorize(request[PRINCIPAL], request.match_info["channel_id"], tenant)


@routes.put("/v1/providers/slack/{channel_id}/revoke_access")
@authorized_by(_may_revoke)
async def revoke_access(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    principal = request[PRINCIPAL]
    await request.app[SLACK].revoke_access(principal, request.match_info["channel_id"], tenant)
    return web.json_response(wire.revoked_body(principal.is_secret))


@routes.get("/providers/slack/authenticate")
async def authenticate(request: web.Request) -> web.Response:
    installer = request.app[SLACK_INSTALLER]
    outcome = await installer.handle_callback(request.query)
    request.app[METRICS].installs.labels("slack", outcome.reason or "installed").inc()
    return outcome_response(outcome, installer.allowed_origins, "Slack")


@routes.post("/providers/slack/events")
async def events(request: web.Request) -> web.Response:
    """The Request URL of the Slack app's Event Subscriptions (signed; see slack/events.py)."""
    body = await request.read()
    return web.json_response(await request.app[SLACK_EVENTS].handle(body, request.headers))
