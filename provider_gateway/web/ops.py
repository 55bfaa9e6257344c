"""Operations endpoints: liveness, readiness, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from importlib import resources
from typing import Any

from aiohttp import web
from sqlalchemy import text

from provider_gateway import __version__
from provider_gateway.storage.outage import DatabaseUnavailable
from provider_gateway.web.appkeys import GATEWAY, METRICS, SETTINGS, SHARED_STATE
from provider_gateway.web.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_READY_TIMEOUT_SECONDS = 2.0


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    reasons: list[str] = []
    database_problem = await _database_problem(request)
    checks["database"] = "ok" if database_problem is None else "unavailable"
    if database_problem is not None:
        log.warning("readiness: %s", database_problem)
        reasons.append(database_problem)
    # Redis down is a degradation, not unreadiness: requests go straight upstream meanwhile.
    checks["redis"] = await request.app[SHARED_STATE].check()
    unreadable = request.app[GATEWAY].key_ring.unreadable
    checks["encryption_keys"] = "ok" if unreadable is None else "unreadable_data"
    if unreadable is not None:
        reasons.append(unreadable)
    ready = not reasons
    status = (
        "unavailable" if not ready else "degraded" if checks["redis"] == "degraded" else "ready"
    )
    body: dict[str, Any] = {"status": status, "checks": checks}
    if reasons:
        body["reason"] = "; ".join(reasons)
    return web.json_response(body, status=200 if ready else 503)


async def _database_problem(request: web.Request) -> str | None:
    """Why the database cannot serve requests now (a reason without secrets), or None."""
    try:
        async with asyncio.timeout(_READY_TIMEOUT_SECONDS):
            async with request.app[GATEWAY].engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except DatabaseUnavailable as outage:
        return f"database unavailable: {outage.reason}"
    except TimeoutError:
        return f"database unavailable: no answer within {_READY_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # any other failure also means "not ready"; its type is enough
        return f"database unavailable: {type(exc).__name__}"
    return None


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS].public_url))


# Knock's generator leaves its Elixir module names in these: nothing a reader can use.
_INTERNAL_EXTENSIONS = frozenset({"x-struct", "x-validate"})


@functools.cache
def openapi_document(public_url: str | None = None) -> dict[str, Any]:
    """The seed Knock providers spec with the channel data, OAuth and ops endpoints added,
    served from `public_url` (relative to the document when unset)."""
    import yaml  # only this endpoint needs it

    package = resources.files("provider_gateway") / "openapi"
    document: dict[str, Any] = yaml.safe_load(
        (package / "knock-providers-openapi.yml").read_text(encoding="utf-8")
    )
    additions = yaml.safe_load((package / "gateway-additions.yml").read_text(encoding="utf-8"))
    merged = copy.deepcopy(document)
    merged["info"] = {
        "title": "provider-gateway (Knock-compatible Providers API)",
        "version": __version__,
        "description": merged["info"]["description"],
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
    }
    merged["servers"] = [{"url": public_url or "/"}]
    merged["paths"].update(additions["paths"])
    for section, entries in additions["components"].items():
        merged["components"].setdefault(section, {}).update(entries)
    cleaned: dict[str, Any] = _without_internal_extensions(merged)
    return cleaned


def _without_internal_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_internal_extensions(value)
            for key, value in node.items()
            if key not in _INTERNAL_EXTENSIONS
        }
    if isinstance(node, list):
        return [_without_internal_extensions(item) for item in node]
    return node
