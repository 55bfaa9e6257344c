"""`Idempotency-Key` on PUT endpoints: the first answer is replayed for 24 hours, per
environment, as Knock documents; the same key with a different request is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from provider_gateway.errors import GatewayError, InvalidParams
from provider_gateway.web.appkeys import IDEMPOTENCY_LOCKS, PRINCIPAL, SHARED_STATE
from provider_gateway.web.middlewares import error_response

HEADER = "Idempotency-Key"
TTL_SECONDS = 24 * 3600
_MAX_KEY_LENGTH = 255


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get(HEADER)
    if request.method != "PUT" or key is None or PRINCIPAL not in request:
        return await handler(request)
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidParams.field(HEADER, f"must be 1 to {_MAX_KEY_LENGTH} characters")
    principal = request[PRINCIPAL]
    body = await request.read()  # aiohttp keeps it, so the handler reads it again
    fingerprint = hashlib.sha256(
        b"\n".join(
            (request.method.encode(), str(request.rel_url).encode(), principal.actor.encode(), body)
        )
    ).hexdigest()
    slot = "idempotency:" + hashlib.sha256(f"{principal.environment.id}:{key}".encode()).hexdigest()
    state = request.app[SHARED_STATE]
    async with request.app[IDEMPOTENCY_LOCKS].hold(slot):  # a concurrent duplicate waits
        stored = await state.get(slot)
        if stored is not None:
            first: dict[str, Any] = json.loads(stored)
            if first["fingerprint"] != fingerprint:
                raise InvalidParams.field(
                    HEADER, "was already used with a different request in the last 24 hours"
                )
            return _replay(first)
        try:
            response = await handler(request)
        except GatewayError as error:
            response = error_response(error)
        if response.status < 500 and response.status != 429 and isinstance(response, web.Response):
            await state.set(slot, _record(fingerprint, response), TTL_SECONDS)
        return response


def _record(fingerprint: str, response: web.Response) -> bytes:
    return json.dumps(
        {
            "fingerprint": fingerprint,
            "status": response.status,
            "content_type": response.content_type,
            "body": base64.b64encode(
                response.body if isinstance(response.body, bytes) else b""
            ).decode(),
        }
    ).encode()


def _replay(first: dict[str, Any]) -> web.Response:
    response = web.Response(
        status=first["status"],
        body=base64.b64decode(first["body"]),
        content_type=first["content_type"],
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response
