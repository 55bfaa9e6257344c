"""Re-encodings of a component's OAuth state that name the same authorization attempt."""

from __future__ import annotations

import json
from collections.abc import Callable

_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(character):04x}" for character in text)


def reencoded_token(token: str) -> str:
    """The same JWT, its signature spelled differently: base64url of 256 bytes leaves four
    unused bits in the last character, which decoders ignore."""
    header, payload, signature = token.split(".")
    last = _BASE64URL.index(signature[-1])
    return f"{header}.{payload}.{signature[:-1]}{_BASE64URL[last ^ 0b0001]}"


def _with_token(state: str) -> str:
    data = json.loads(state)
    data["user_token"] = reencoded_token(data["user_token"])
    return json.dumps(data)


STATE_VARIANTS: dict[str, Callable[[str], str]] = {
    "trailing space": lambda state: state + " ",
    "leading whitespace": lambda state: "\n\t " + state,
    "keys reordered": lambda state: json.dumps(dict(reversed(json.loads(state).items()))),
    "re-serialised": lambda state: json.dumps(json.loads(state), indent=2, sort_keys=True),
    "u-escaped": lambda state: (
        json.dumps(json.loads(state))
        .replace('"channel_id": "', '"\\u0063hannel_id": "')
        .replace('"$tenants"', '"' + _escaped("$tenants") + '"')
    ),
    "re-encoded user token": _with_token,
}
