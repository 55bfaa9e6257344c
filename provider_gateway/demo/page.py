"""The demo page at `/`: static HTML/JS/CSS from the package, with the demo's keys inlined."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources

from aiohttp import web

_FILES = resources.files("provider_gateway.demo")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class SlackSetup:
    channel_id: str
    client_id: str
    scope: str
    authorize_url: str


@dataclass(frozen=True)
class TeamsSetup:
    channel_id: str
    client_id: str
    consent_url: str
    redirect_uri: str


@dataclass(frozen=True)
class PageConfig:
    public_key: str
    user_token: str
    tenant: str
    slack: SlackSetup
    teams: TeamsSetup


def page_routes(config: PageConfig) -> list[web.RouteDef]:
    # In a <script type="application/json"> block only "</" could end the element early.
    inlined = json.dumps(asdict(config)).replace("</", "<\\/")
    page = _FILES.joinpath("page.html").read_text(encoding="utf-8").replace("__CONFIG__", inlined)
    script = _FILES.joinpath("page.js").read_text(encoding="utf-8")
    styles = _FILES.joinpath("page.css").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def page_script(_request: web.Request) -> web.Response:
        return web.Response(text=script, content_type="text/javascript", headers=headers)

    async def page_styles(_request: web.Request) -> web.Response:
        return web.Response(text=styles, content_type="text/css", headers=headers)

    return [
        web.get("/", index),
        web.get("/demo/page.js", page_script),
        web.get("/demo/page.css", page_styles),
    ]
