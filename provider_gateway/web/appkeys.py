"""Typed keys for what the providers share on the aiohttp application and requests.

Each provider package defines the keys of its own services in its routes module."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from provider_gateway.auth import Principal
from provider_gateway.config import Settings
from provider_gateway.gateway import Gateway
from provider_gateway.rate_limits import RateLimiter, Verdict
from provider_gateway.shared.listings import ListingCache
from provider_gateway.shared.state import SharedLocks, SharedState
from provider_gateway.web.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
GATEWAY = web.AppKey("gateway", Gateway)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
SHARED_STATE = web.AppKey("shared_state", SharedState)
LISTINGS = web.AppKey("listings", ListingCache)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
METRICS = web.AppKey("metrics", Metrics)
IDEMPOTENCY_LOCKS = web.AppKey("idempotency_locks", SharedLocks)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
# The rate-limit verdict of a request on a route limited for its caller.
RATE_LIMIT = web.RequestKey("rate_limit", Verdict)
