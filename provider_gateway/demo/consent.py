"""The simulated "Allow / Cancel" screens the Slack and Microsoft simulators show."""

from __future__ import annotations

import html
from collections.abc import Mapping

from aiohttp import web

ALLOW = "allow"


def consent_screen(
    *, provider: str, heading: str, details: list[str], fields: Mapping[str, str]
) -> web.Response:
    """A form that posts `fields` back to the same URL, with `decision` = allow or cancel."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    items = "".join(f"<li>{html.escape(line)}</li>" for line in details)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(provider)} (simulated)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 2.5rem; color: #1f2328; max-width: 30rem">
<p style="color: #8250df; font-size: .85rem">{html.escape(provider)} simulator,
provider-gateway demo</p>
<h1 style="font-size: 1.3rem">{html.escape(heading)}</h1>
<ul>{items}</ul>
<form method="post">{hidden}
<button name="decision" value="{ALLOW}" style="padding: .5rem 1.2rem">Allow</button>
<button name="decision" value="cancel" style="padding: .5rem 1.2rem">Cancel</button>
</form></body></html>"""
    return web.Response(
        text=body,
        content_type="text/html",
        # No form-action: Chromium applies it to the redirect that follows the post too.
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
