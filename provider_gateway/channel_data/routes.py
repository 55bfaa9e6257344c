"""HTTP handlers for channel data: parse, call the service, render the ChannelData envelope."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from provider_gateway import inputs
from provider_gateway.channel_data import service
from provider_gateway.errors import InvalidParams
from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY, PRINCIPAL
from provider_gateway.web.idempotency import authorized_by

routes = web.RouteTableDef()

OBJECT_PATH = "/v1/objects/{collection}/{object_id}/channel_data/{channel_id}"
USER_PATH = "/v1/users/{user_id}/channel_data/{channel_id}"


def _recipient(request: web.Request) -> Recipient:
    info = request.match_info
    if "user_id" in info:
        return Recipient.user(info["user_id"])
    return Recipient.object(info["collection"], info["object_id"])


def _envelope(channel_id: str, data: dict[str, Any]) -> web.Response:
    return web.json_response({"__typename": "ChannelData", "channel_id": channel_id, "data": data})


async def _data_from_body(request: web.Request) -> object:
    raw = await request.read()  # larger than client_max_size: 413, rendered by the middleware
    try:
        body = inputs.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParams.field("body", f"is not valid JSON ({exc})") from None
    if not isinstance(body, dict) or "data" not in body:
        raise InvalidParams.field("data", 'is required: send {"data": {...}}')
    return body["data"]


@routes.get(OBJECT_PATH)
@routes.get(USER_PATH)
async def get_channel_data(request: web.Request) -> web.Response:
    channel_id = request.match_info["channel_id"]
    data = await service.get_channel_data(
        request.app[GATEWAY], request[PRINCIPAL], channel_id, _recipient(request)
    )
    return _envelope(channel_id, data)


async def _may_write(request: web.Request) -> None:
    await service.authorize_write(
        request.app[GATEWAY],
        request[PRINCIPAL],
        request.match_info["channel_id"],
        _recipient(request),
    )


@routes.put(OBJECT_PATH)
@routes.put(USER_PATH)
@authorized_by(_may_write)
async def set_channel_data(request: web.Request) -> web.Response:
    channel_id = request.match_info["channel_id"]
    data = await service.set_channel_data(
        request.app[GATEWAY],
        request[PRINCIPAL],
        channel_id,
        _recipient(request),
        await _data_from_body(request),
    )
    return _envelope(channel_id, data)


@routes.delete(OBJECT_PATH)
@routes.delete(USER_PATH)
async def unset_channel_data(request: web.Request) -> web.Response:
    await service.unset_channel_data(
        request.app[GATEWAY],
        request[PRINCIPAL],
        request.match_info["channel_id"],
        _recipient(request),
    )
    return web.Response(status=204)
