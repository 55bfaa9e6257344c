"""The application factory: middlewares, resources (cleanup contexts) and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from provider_gateway.audit_events import routes as audit_routes
from provider_gateway.channel_data.routes import routes as channel_data_routes
from provider_gateway.config import Settings
from provider_gateway.gateway import open_gateway, refuse_unreadable_data
from provider_gateway.http_client import create_session
from provider_gateway.maintenance import Maintenance
from provider_gateway.ms_teams.client import GraphClient
from provider_gateway.ms_teams.credentials import GraphTokens
from provider_gateway.ms_teams.oauth import SigninUrls, TeamsInstaller
from provider_gateway.ms_teams.routes import TEAMS, TEAMS_INSTALLER
from provider_gateway.ms_teams.routes import routes as teams_routes
from provider_gateway.ms_teams.service import TeamsService
from provider_gateway.ms_teams.signin import PendingSignins
from provider_gateway.rate_limits import RateLimiter
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.listings import ListingCache
from provider_gateway.shared.pacing import Pacer
from provider_gateway.shared.state import SharedLocks, SharedOneTimeKeys, SharedState
from provider_gateway.slack.client import SlackClient
from provider_gateway.slack.events import SlackEvents
from provider_gateway.slack.oauth import SlackInstaller
from provider_gateway.slack.routes import SLACK, SLACK_EVENTS, SLACK_INSTALLER
from provider_gateway.slack.routes import routes as slack_routes
from provider_gateway.slack.service import SlackService
from provider_gateway.users.routes import routes as users_routes
from provider_gateway.web.appkeys import (
    GATEWAY,
    HTTP_SESSION,
    IDEMPOTENCY_LOCKS,
    LISTINGS,
    METRICS,
    RATE_LIMITER,
    SETTINGS,
    SHARED_STATE,
)
from provider_gateway.web.cors import cors_middleware
from provider_gateway.web.idempotency import idempotency_middleware
from provider_gateway.web.logs import quiet_malformed_requests
from provider_gateway.web.metrics import Metrics
from provider_gateway.web.middlewares import (
    auth_middleware,
    error_middleware,
    input_middleware,
    metrics_middleware,
    rate_limit_headers_middleware,
    request_id_middleware,
)
from provider_gateway.web.ops import routes as ops_routes

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    quiet_malformed_requests()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            metrics_middleware,
            request_id_middleware,
            cors_middleware(settings.allowed_origins),
            rate_limit_headers_middleware,
            error_middleware,
            auth_middleware,
            input_middleware,
            idempotency_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_gateway_context)
    app.cleanup_ctx.append(_http_context)
    app.cleanup_ctx.append(_shared_state_context)
    app.cleanup_ctx.append(_providers_context)
    app.cleanup_ctx.append(_maintenance_context)
    app.add_routes(ops_routes)
    app.add_routes(channel_data_routes)
    app.add_routes(users_routes)
    app.add_routes(audit_routes)
    app.add_routes(slack_routes)
    app.add_routes(teams_routes)
    return app


async def _gateway_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with open_gateway(settings, run_migrations=settings.auto_migrate) as gateway:
        if settings.channels_file:
            from provider_gateway.declared import apply_channels_file, load_channels_file

            await apply_channels_file(gateway, load_channels_file(settings.channels_file))
        await refuse_unreadable_data(gateway)
        app[GATEWAY] = gateway
        yield


async def _http_context(app: web.Application) -> AsyncIterator[None]:
    async with create_session(app[SETTINGS]) as session:
        app[HTTP_SESSION] = session
        yield


async def _shared_state_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    backend = RedisBackend.from_settings(settings) if settings.uses_redis else None
    state = SharedState(backend)
    app[SHARED_STATE] = state
    listings = ListingCache(state, settings.cache_ttl_seconds)
    app[LISTINGS] = listings
    app[GATEWAY].channel_data.on_change(listings.invalidate)
    app[RATE_LIMITER] = RateLimiter(state, settings.rate_limits, settings.secret_key_rate_limits)
    app[IDEMPOTENCY_LOCKS] = SharedLocks(state)
    app[METRICS].watch(listings.stats, app[RATE_LIMITER])
    # Learns of every replica's writes over Redis pub/sub: cached hits then skip Redis.
    announcements = asyncio.create_task(listings.generations.run())
    yield
    announcements.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await announcements
    await state.close()


async def _providers_context(app: web.Application) -> AsyncIterator[None]:
    settings, gateway, session = app[SETTINGS], app[GATEWAY], app[HTTP_SESSION]
    state, listings = app[SHARED_STATE], app[LISTINGS]
    locks, states = SharedLocks(state), SharedOneTimeKeys(state)
    origins = redirect_origins(settings)
    observe = app[METRICS].observe_upstream
    pacer = Pacer(
        state if settings.upstream_pacing else None, max_wait=settings.upstream_wait_seconds
    )
    slack_client = SlackClient(session, settings.slack_api_url, pacer=pacer, observe=observe)
    app[SLACK] = SlackService(gateway, slack_client, locks, listings)
    app[SLACK_INSTALLER] = SlackInstaller(gateway, slack_client, states, origins)
    app[SLACK_EVENTS] = SlackEvents(gateway)
    # msal is synchronous: its calls run here, never on the event loop.
    msal_threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="msal")
    graph_tokens = GraphTokens(
        settings, locks, msal_threads, state, gateway.key_ring, observe=observe
    )
    graph = GraphClient(session, settings.ms_graph_url, pacer=pacer, observe=observe)
    app[TEAMS] = TeamsService(gateway, graph_tokens, graph, listings)
    app[TEAMS_INSTALLER] = TeamsInstaller(
        gateway,
        graph_tokens,
        states,
        PendingSignins(state, gateway.key_ring),
        origins,
        SigninUrls(settings.public_url, settings.ms_browser_login_url or settings.ms_login_url),
    )
    yield
    graph_tokens.close()
    msal_threads.shutdown(wait=False, cancel_futures=True)


async def _maintenance_context(app: web.Application) -> AsyncIterator[None]:
    maintenance = Maintenance(
        app[GATEWAY].engine,
        app[SHARED_STATE],
        audit_retention_days=app[SETTINGS].audit_retention_days,
    )
    task = asyncio.create_task(maintenance.run_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def redirect_origins(settings: Settings) -> frozenset[str]:
    """Where an OAuth popup may send the browser: the allowed app origins and ourselves."""
    own = [settings.public_url] if settings.public_url else []
    return frozenset((*settings.allowed_origins, *own))


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string: OAuth callbacks carry codes there."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return  # skip building the record's fields (on every request)
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
            },
        )


# How the app must be served, by `serve` and by tests alike: never aiohttp's default access
# log, which writes query strings (OAuth codes, user tokens) verbatim.
RUNNER_OPTIONS: dict[str, Any] = {"access_log_class": AccessLogger}
