"""HTTP handlers for users: parse, call the service, render Knock's `User` and list shapes."""

from __future__ import annotations

from aiohttp import web

from provider_gateway.users import listing, models, service
from provider_gateway.web.appkeys import GATEWAY, PRINCIPAL
from provider_gateway.web.idempotency import authorized_by

routes = web.RouteTableDef()

USERS_PATH = "/v1/users"
USER_PATH = "/v1/users/{user_id}"


async def _may_identify(request: web.Request) -> None:
    service.may_act_for(request[PRINCIPAL], request.match_info["user_id"])


@routes.put(USER_PATH)
@authorized_by(_may_identify)
async def identify(request: web.Request) -> web.Response:
    body = models.json_object(await request.read())  # over client_max_size: 413
    user = await service.identify(
        request.app[GATEWAY], request[PRINCIPAL], request.match_info["user_id"], body
    )
    return web.json_response(user)


@routes.get(USER_PATH)
async def get_user(request: web.Request) -> web.Response:
    user = await service.get_user(
        request.app[GATEWAY], request[PRINCIPAL], request.match_info["user_id"]
    )
    return web.json_response(user)


@routes.delete(USER_PATH)
async def delete_user(request: web.Request) -> web.Response:
    await service.delete_user(
        request.app[GATEWAY], request[PRINCIPAL], request.match_info["user_id"]
    )
    return web.Response(status=204)


@routes.get(USERS_PATH)
async def list_users(request: web.Request) -> web.Response:
    # knockapi sends `include[]=…` (brackets); a plain repeated `include` is taken too.
    include = request.query.getall("include[]", []) + request.query.getall("include", [])
    query = listing.ListQuery.from_params(request.query, include)
    page = await service.list_users(request.app[GATEWAY], request[PRINCIPAL], query)
    return web.json_response(page)
