"""The demo page at `/`: static HTML/JS/CSS from the package, with the demo's keys inlined."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

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


def page_routes(config: PageConfig, port: int) -> list[web.RouteDef]:
    """The page's routes. They answer only to the loopback names of `port`: the page carries a
    user token, and a site that rebinds its own DNS name to 127.0.0.1 could otherwise read it."""
    hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})
    # In a <script type="application/json"> block only "</" could end the element early.
    inlined = json.dumps(asdict(config)).replace("</", "<\\/")
    page = _FILES.joinpath("page.html").read_text(encoding="utf-8").replace("__CONFIG__", inlined)
    script = _FILES.joinpath("page.js").read_text(encoding="utf-8")
    styles = _FILES.joinpath("page.css").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}

    def serve(body: str, content_type: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            if request.host not in hosts:
                raise web.HTTPMisdirectedRequest(text="The demo page answers on 127.0.0.1 only.")
            return web.Response(text=body, content_type=content_type, headers=headers)

        return handler

    index = serve(page, "text/html")
    page_script = serve(script, "text/javascript")
    page_styles = serve(styles, "text/css")

    return [
        web.get("/", index),
        web.get("/demo/page.js", page_script),
        web.get("/demo/page.css", page_styles),
    ]
