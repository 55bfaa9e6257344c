"""Typed keys for everything stored on the aiohttp application and requests."""

from __future__ import annotations

from aiohttp import web

from provider_gateway.auth import Principal
from provider_gateway.config import Settings
from provider_gateway.gateway import Gateway

SETTINGS = web.AppKey("settings", Settings)
GATEWAY = web.AppKey("gateway", Gateway)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
