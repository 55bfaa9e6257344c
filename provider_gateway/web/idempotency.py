"""`Idempotency-Key` on PUT endpoints: the first answer is replayed for 24 hours, as Knock
documents; the same key with a different request is refused.

A key belongs to its caller: the environment's secret keys share one space, each user of a
public key has their own, so one caller can neither replay nor probe another's keys. A replay
is authorised like the request itself first (the route declares how, with `authorized_by`),
and the stored answer, which may hold tokens, is kept encrypted with the key ring.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from provider_gateway.auth import Principal
from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.errors import GatewayError, InvalidParams
from provider_gateway.web.appkeys import GATEWAY, IDEMPOTENCY_LOCKS, PRINCIPAL, SHARED_STATE
from provider_gateway.web.middlewares import error_response

HEADER = "Idempotency-Key"
TTL_SECONDS = 24 * 3600
_MAX_KEY_LENGTH = 255
_AUTHORIZE = "_idempotency_authorize"

ReplayCheck = Callable[[web.Request], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Any])


def authorized_by(check: ReplayCheck) -> Callable[[H], H]:
    """Declare how a PUT handler's request is authorised, so a stored answer is replayed only
    to a caller who may still make that request. A PUT without it ignores Idempotency-Key."""

    def mark(handler: H) -> H:
        setattr(handler, _AUTHORIZE, check)
        return handler

    return mark


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get(HEADER)
    if request.method != "PUT" or key is None or PRINCIPAL not in request:
        return await handler(request)
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidParams.field(HEADER, f"must be 1 to {_MAX_KEY_LENGTH} characters")
    authorize: ReplayCheck | None = getattr(request.match_info.handler, _AUTHORIZE, None)
    if authorize is None:
        return await handler(request)
    await authorize(request)
    principal = request[PRINCIPAL]
    body = await request.read()  # aiohttp keeps it, so the handler reads it again
    fingerprint = hashlib.sha256(
        b"\n".join((request.method.encode(), str(request.rel_url).encode(), body))
    ).hexdigest()
    slot = _slot(principal, key)
    state, key_ring = request.app[SHARED_STATE], request.app[GATEWAY].key_ring
    async with request.app[IDEMPOTENCY_LOCKS].hold(slot):  # a concurrent duplicate waits
        first = _open(key_ring, await state.get(slot))
        if first is not None:
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
            await state.set(slot, _seal(key_ring, fingerprint, response), TTL_SECONDS)
        return response


def _slot(principal: Principal, key: str) -> str:
    """Where a caller's key is kept: by environment and caller, the key itself hashed."""
    caller = "secret" if principal.is_secret else f"user:{principal.user_id}"
    scoped = "\x1f".join((principal.environment.id, caller, key))
    return "idempotency:" + hashlib.sha256(scoped.encode()).hexdigest()


def _seal(key_ring: KeyRing, fingerprint: str, response: web.Response) -> bytes:
    record = {
        "fingerprint": fingerprint,
        "status": response.status,
        "content_type": response.content_type,
        "body": base64.b64encode(
            response.body if isinstance(response.body, bytes) else b""
        ).decode(),
    }
    return key_ring.encrypt(json.dumps(record).encode()).encode("ascii")


def _open(key_ring: KeyRing, sealed: bytes | None) -> dict[str, Any] | None:
    """The stored record; one sealed under a key no longer in the ring counts as absent."""
    if not sealed:
        return None
    try:
        record: dict[str, Any] = json.loads(key_ring.decrypt(sealed.decode("ascii")))
    except (UndecryptableError, UnicodeDecodeError, ValueError):
        return None
    return record


def _replay(first: dict[str, Any]) -> web.Response:
    response = web.Response(
        status=first["status"],
        body=base64.b64decode(first["body"]),
        content_type=first["content_type"],
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response
