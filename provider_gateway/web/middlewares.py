"""Request id, error rendering (Knock's body, never a traceback) and authentication."""

from __future__ import annotations

import logging
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from provider_gateway import inputs
from provider_gateway.crypto import UndecryptableError
from provider_gateway.errors import (
    GatewayError,
    InvalidParams,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from provider_gateway.rate_limits import tier_for
from provider_gateway.storage.outage import RETRY_AFTER_SECONDS, DatabaseUnavailable
from provider_gateway.web.appkeys import (
    GATEWAY,
    METRICS,
    PRINCIPAL,
    RATE_LIMIT,
    RATE_LIMITER,
    REQUEST_ID,
)
from provider_gateway.web.logs import request_id_var

log = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, type[GatewayError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def error_response(error: GatewayError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


# Methods aiohttp routes; any other token a client sends is counted as "other", so a caller
# cannot mint a metric series per made-up method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        method = request.method if request.method in _METHODS else "other"
        request.app[METRICS].observe_request(name, method, status, time.perf_counter() - started)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = (
        incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else secrets.token_hex(16)
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
    except DatabaseUnavailable as outage:
        # Expected while PostgreSQL fails over or restarts: one line, no traceback, and a
        # 503 the clients retry (Knock's SDKs honour Retry-After), never a 500.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, outage)
        return error_response(database_unavailable())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError())


def database_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The database is unavailable; retry after the time in the Retry-After header",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


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
        verdict = None if tier is None else await request.app[RATE_LIMITER].take(principal, tier)
        if verdict is not None:
            request[RATE_LIMIT] = verdict
            verdict.enforce()
    return await handler(request)


@web.middleware
async def rate_limit_headers_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """`RateLimit-Policy` and `RateLimit` on every response of a route limited for this caller,
    errors (rendered below this middleware) and the 429 itself included."""
    response = await handler(request)
    verdict = request.get(RATE_LIMIT)
    if verdict is not None and not response.prepared:
        response.headers.update(verdict.headers())
    return response


# Query values that are not identifiers: opaque upstream tokens and filters passed through
# (Graph's $skiptoken and $filter can be long), and the JSON form of an object reference,
# whose fields are checked as identifiers once parsed (web/wire.py).
_LONG_QUERY_VALUES = ("query_options[", "query_options.", "access_token_object", "ms_teams_tenant")
_MAX_LONG_QUERY_VALUE = 4096


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Path and query values of the API are identifiers: no control characters (PostgreSQL
    refuses NUL) and no longer than an id column, checked once here for every endpoint."""
    if request.path.startswith("/v1/"):
        seen = request.path_qs
        if seen not in _CHECKED:
            for name, value in request.match_info.items():
                _check(name, value, inputs.MAX_ID_LENGTH)
            for name, value in request.query.items():
                long = name.startswith(_LONG_QUERY_VALUES)
                _check(name, value, _MAX_LONG_QUERY_VALUE if long else inputs.MAX_ID_LENGTH)
            if len(seen) <= _MAX_CHECKED_LENGTH:
                if len(_CHECKED) >= _MAX_CHECKED:
                    _CHECKED.clear()
                _CHECKED.add(seen)
    return await handler(request)


# Paths with query strings that passed the checks above (the same listing is asked for again
# and again); a pure function of the text, so a hit skips them. At most about 4 MB.
_CHECKED: set[str] = set()
_MAX_CHECKED, _MAX_CHECKED_LENGTH = 4096, 1024


def _check(name: str, value: str, max_length: int) -> None:
    problem = inputs.identifier_problem(value, max_length=max_length) if value else None
    if problem is not None:
        raise InvalidParams.field(name, problem)
