"""Typed keys for everything stored on the aiohttp application and requests."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from provider_gateway.auth import Principal
from provider_gateway.config import Settings
from provider_gateway.gateway import Gateway
from provider_gateway.metrics import Metrics
from provider_gateway.ms_teams.oauth import TeamsInstaller
from provider_gateway.ms_teams.service import TeamsService
from provider_gateway.rate_limits import RateLimiter
from provider_gateway.shared.listings import ListingCache
from provider_gateway.shared.state import SharedLocks, SharedState
from provider_gateway.slack.events import SlackEvents
from provider_gateway.slack.oauth import SlackInstaller
from provider_gateway.slack.service import SlackService

SETTINGS = web.AppKey("settings", Settings)
GATEWAY = web.AppKey("gateway", Gateway)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
SHARED_STATE = web.AppKey("shared_state", SharedState)
LISTINGS = web.AppKey("listings", ListingCache)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
METRICS = web.AppKey("metrics", Metrics)
IDEMPOTENCY_LOCKS = web.AppKey("idempotency_locks", SharedLocks)
SLACK = web.AppKey("slack", SlackService)
SLACK_INSTALLER = web.AppKey("slack_installer", SlackInstaller)
SLACK_EVENTS = web.AppKey("slack_events", SlackEvents)
TEAMS = web.AppKey("teams", TeamsService)
TEAMS_INSTALLER = web.AppKey("teams_installer", TeamsInstaller)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
