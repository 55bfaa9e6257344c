"""Request id, error rendering (Knock's body, never a traceback) and authentication."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from provider_gateway.crypto import UndecryptableError
from provider_gateway.errors import (
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from provider_gateway.rate_limits import tier_for
from provider_gateway.web.appkeys import GATEWAY, METRICS, PRINCIPAL, RATE_LIMITER, REQUEST_ID
from provider_gateway.web.logs import request_id_var

log = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, type[GatewayError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def error_response(error: GatewayError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by route (its pattern, never the raw path) and status, with latency."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(name, request.method, str(status)).inc()
        metrics.request_seconds.labels(name, request.method).observe(time.perf_counter() - started)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = (
        incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
    )
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    try:
        response = await handler(request)
    finally:
        request_id_var.reset(token)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error)
    except UndecryptableError as error:
        # Not the caller's fault and not a bug: this replica's keys do not fit the data.
        log.error("%s (on %s %s)", error, request.method, request.path)
        request.app[GATEWAY].key_ring.mark_unreadable(str(error))
        return error_response(ServiceUnavailable(str(error)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError())


def _from_http_exception(exc: web.HTTPException) -> GatewayError:
    """aiohttp's own 404/405/413 (routing, body size) in Knock's body."""
    known = _HTTP_ERRORS.get(exc.status)
    if known is not None:
        error = known()
        if exc.status == 405:
            error.headers["Allow"] = exc.headers.get("Allow", "")
        return error
    error = GatewayError(exc.reason)
    error.status = exc.status  # type: ignore[misc]
    error.code = exc.reason.lower().replace(" ", "_")  # type: ignore[misc]
    error.type = "invalid_request_error" if exc.status < 500 else "api_error"  # type: ignore[misc]
    return error


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every `/v1/` call is authenticated, then counted against its Knock rate-limit tier,
    before its handler runs; preflights are CORS's."""
    if request.path.startswith("/v1/") and request.method != "OPTIONS":
        gateway = request.app[GATEWAY]
        principal = await gateway.authenticator.authenticate(
            request.headers.get("Authorization"), request.headers.get("X-Knock-User-Token")
        )
        request[PRINCIPAL] = principal
        tier = tier_for(request.method, request.path)
        if tier is not None:
            await request.app[RATE_LIMITER].check(principal, tier)
    return await handler(request)
