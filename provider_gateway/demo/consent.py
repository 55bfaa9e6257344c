"""The consent screens the simulators show (and the test fakes reuse): Allow/Accept or Cancel."""

from __future__ import annotations

import html
from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

ALLOW = "allow"
# What Entra adds to the redirect URI when the admin presses Cancel on the admin-consent screen.
ENTRA_DECLINED: Mapping[str, str] = MappingProxyType(
    {
        "error": "access_denied",
        "error_subcode": "cancel",
        "error_description": "AADSTS65004: User declined to consent to access the app.",
    }
)
_BUTTONS = "button { padding: .5rem 1.2rem; margin-right: .5rem }"
_STYLE = "font-family: system-ui, sans-serif; margin: 2.5rem; color: #1f2328; max-width: 30rem"
# No form-action: Chromium applies it to the redirect that follows the post too.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def consent_screen(
    *,
    provider: str,
    heading: str,
    details: list[str],
    fields: Mapping[str, str],
    allow_label: str = "Allow",
) -> web.Response:
    """A form that posts `fields` back to the same URL, with `decision` = allow or cancel."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    items = "".join(f"<li>{html.escape(line)}</li>" for line in details)
    return _page(
        provider,
        heading,
        f"""<ul>{items}</ul>
<form method="post">{hidden}
<button name="decision" value="{ALLOW}">{html.escape(allow_label)}</button>
<button name="decision" value="cancel">Cancel</button>
</form>""",
    )


def refusal_screen(*, provider: str, error: str) -> web.Response:
    """What the provider shows instead of a consent screen for a bad request (400)."""
    message = f"<p>Error: <code>{html.escape(error)}</code></p>"
    return _page(provider, "Something went wrong", message, 400)


def _page(provider: str, heading: str, body: str, status: int = 200) -> web.Response:
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(provider)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_BUTTONS}</style></head>
<body style="{_STYLE}">
<p style="color: #8250df; font-size: .85rem">{html.escape(provider)}</p>
<h1 style="font-size: 1.3rem">{html.escape(heading)}</h1>
{body}</body></html>"""
    return web.Response(
        text=page,
        status=status,
        content_type="text/html",
        headers={"Content-Security-Policy": _CSP},
    )
