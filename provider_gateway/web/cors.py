"""CORS for browser (public-key) callers from `GATEWAY_ALLOWED_ORIGINS`, preflight included.

Hand-written rather than aiohttp-cors: that library needs every route registered with it and
leaves responses raised by middlewares (401, 404) without CORS headers, which browsers then
hide from SlackKit's error handling.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from provider_gateway.errors import Forbidden
from provider_gateway.web.middlewares import error_response

ALLOWED_METHODS = "GET, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = frozenset(
    {
        "accept",
        "authorization",
        "content-type",
        "idempotency-key",
        "x-knock-branch",
        "x-knock-client",
        "x-knock-user-token",
        "x-request-id",
    }
)
# Read by browser code: the rate-limit state (draft-ietf-httpapi-ratelimit-headers) included.
EXPOSED_HEADERS = "Retry-After, RateLimit, RateLimit-Policy, X-Request-Id, Idempotent-Replayed"


def cors_middleware(allowed_origins: tuple[str, ...]) -> Middleware:
    allowed = frozenset(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        is_preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if origin is None or origin not in allowed:
            if is_preflight:
                return error_response(Forbidden("This origin is not allowed"))
            return await handler(request)
        if is_preflight:
            response: web.StreamResponse = web.Response(status=204)
            requested = request.headers.get("Access-Control-Request-Headers", "")
            headers = [h.strip() for h in requested.split(",") if h.strip()]
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ", ".join(
                h for h in headers if h.lower() in ALLOWED_HEADERS
            )
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return middleware
