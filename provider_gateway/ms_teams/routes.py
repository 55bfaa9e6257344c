"""HTTP handlers for Microsoft Teams: parse the wire forms, call the service, render."""

from __future__ import annotations

from aiohttp import web

from provider_gateway.ms_teams.models import required_team_id
from provider_gateway.ms_teams.oauth import SigninRedirect, TeamsInstaller
from provider_gateway.ms_teams.service import TeamsService
from provider_gateway.web import wire
from provider_gateway.web.appkeys import METRICS, PRINCIPAL
from provider_gateway.web.idempotency import authorized_by
from provider_gateway.web.oauth_page import outcome_response

routes = web.RouteTableDef()
TEAMS = web.AppKey("teams", TeamsService)
TEAMS_INSTALLER = web.AppKey("teams_installer", TeamsInstaller)

TENANT_PARAM = "ms_teams_tenant_object"


@routes.get("/v1/providers/ms-teams/{channel_id}/auth_check")
async def auth_check(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    result = await request.app[TEAMS].auth_check(
        request[PRINCIPAL], request.match_info["channel_id"], tenant
    )
    return web.json_response(result)


@routes.get("/v1/providers/ms-teams/{channel_id}/teams")
async def list_teams(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    result = await request.app[TEAMS].list_teams(
        request[PRINCIPAL],
        request.match_info["channel_id"],
        tenant,
        wire.query_options(request.query),
    )
    return web.Response(body=result, content_type="application/json")


@routes.get("/v1/providers/ms-teams/{channel_id}/channels")
async def list_channels(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    result = await request.app[TEAMS].list_channels(
        request[PRINCIPAL],
        request.match_info["channel_id"],
        tenant,
        required_team_id(request.query),
        wire.query_options(request.query),
    )
    return web.Response(body=result, content_type="application/json")


async def _may_revoke(request: web.Request) -> None:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    await request.app[TEAMS].authorize(request[PRINCIPAL], request.match_info["channel_id"], tenant)


@routes.put("/v1/providers/ms-teams/{channel_id}/revoke_access")
@authorized_by(_may_revoke)
async def revoke_access(request: web.Request) -> web.Response:
    tenant = wire.object_reference(request.query, TENANT_PARAM)
    principal = request[PRINCIPAL]
    await request.app[TEAMS].revoke_access(principal, request.match_info["channel_id"], tenant)
    return web.json_response(wire.revoked_body(principal.is_secret))


@routes.get("/providers/ms-teams/authenticate")
async def authenticate(request: web.Request) -> web.Response:
    """Both hops: Entra's consent redirect (-> 302 to the sign-in) and the sign-in's."""
    installer = request.app[TEAMS_INSTALLER]
    outcome = await installer.handle_callback(request.query, str(request.url.with_query(None)))
    if isinstance(outcome, SigninRedirect):
        # The Location carries our state and nonce: not for caches, nor for Referer headers.
        return web.Response(
            status=302,
            headers={
                "Location": outcome.location,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )
    request.app[METRICS].installs.labels("ms-teams", outcome.reason or "installed").inc()
    return outcome_response(outcome, installer.allowed_origins, "Microsoft Teams")
