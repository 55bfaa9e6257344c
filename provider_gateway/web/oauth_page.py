"""The page an OAuth popup ends on: posts authComplete/authFailed to the opener and closes.

SlackKit/TeamsKit listen for `{type, nonce}` from our origin (useAuthPostMessageListener) and
Slack's listener rejects authComplete without the nonce it stored. Everything echoed is
escaped; the page carries no token and sends no Referer (the URL holds the OAuth code).
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from yarl import URL

from provider_gateway.install import SERVICE_UNAVAILABLE, InstallOutcome, allowed_redirect
from provider_gateway.storage.outage import RETRY_AFTER_SECONDS

Outcome = Literal["authComplete", "authFailed"]


@dataclass(frozen=True)
class AuthPage:
    status: int
    body: str
    headers: dict[str, str]


def render(
    outcome: Outcome,
    *,
    nonce: str | None,
    reason: str | None,
    redirect_url: str | None,
    allowed_origins: frozenset[str],
    provider_name: str,
) -> AuthPage:
    redirect = allowed_redirect(redirect_url, allowed_origins)
    # Post only to the app's origin when the state names it, else to each allowed origin (the
    # browser delivers to the one that opened the popup); never "*", which would tell any
    # page that opened this callback the outcome and the nonce.
    target_origins = [str(URL(redirect).origin())] if redirect else sorted(allowed_origins)
    message: dict[str, str] = {"type": outcome}
    if nonce:
        message["nonce"] = nonce
    if reason:
        message["reason"] = reason
    script_nonce = secrets.token_urlsafe(16)
    heading = (
        f"Connected to {provider_name}"
        if outcome == "authComplete"
        else f"Could not connect to {provider_name}"
    )
    detail = "You can close this window." if outcome == "authComplete" else f"Reason: {reason}."
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem; color: #1f2328">
<h1 style="font-size: 1.25rem">{html.escape(heading)}</h1>
<p>{html.escape(detail)}</p>
<script nonce="{script_nonce}">
(function () {{
  var message = {_script_json(message)};
  var targetOrigins = {_script_json(target_origins)};
  var redirect = {_script_json(redirect)};
  if (window.opener && !window.opener.closed) {{
    targetOrigins.forEach(function (origin) {{ window.opener.postMessage(message, origin); }});
    window.close();
  }} else if (redirect) {{
    window.location.replace(redirect);
  }}
}})();
</script>
</body></html>
"""
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{script_nonce}'; "
            "style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
        ),
    }
    status = 200 if outcome == "authComplete" else 400
    if reason == SERVICE_UNAVAILABLE:  # ours, not the caller's: a retry in a moment works
        status = 503
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return AuthPage(status=status, body=body, headers=headers)


def _script_json(value: object) -> str:
    """JSON that is safe inside <script>: no tag, comment or line-terminator breakouts."""
    text = json.dumps(value)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def outcome_response(
    outcome: InstallOutcome, allowed_origins: frozenset[str], provider_name: str
) -> web.Response:
    page = render(
        "authComplete" if outcome.ok else "authFailed",
        nonce=outcome.nonce,
        reason=outcome.reason,
        redirect_url=outcome.redirect_url,
        allowed_origins=allowed_origins,
        provider_name=provider_name,
    )
    return web.Response(status=page.status, text=page.body, headers=page.headers)
