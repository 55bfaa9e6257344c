"""Query forms real Knock clients send: JSON-string or bracket object references, and
`query_options` as bracket keys (first page) and dotted keys (SDK pagination; dotted wins)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from multidict import MultiMapping

from provider_gateway import inputs
from provider_gateway.errors import InvalidParams
from provider_gateway.models import Recipient

# JSON-string references already parsed and valid are remembered by their text (errors never
# are): a busy tenant sends the same one on every request, and parsing and checking it was a
# tenth of a cached hit.
_MAX_REFERENCES, _MAX_REMEMBERED_TEXT = 4096, 600  # at most about 2.5 MB


def object_reference(query: MultiMapping[str], name: str) -> Recipient:
    """`name={"collection":…,"object_id":…}` (Python/Node SDKs) or `name[collection]=…` (JS)."""
    raw = query.get(name)
    if raw is not None:
        if len(raw) <= _MAX_REMEMBERED_TEXT:
            return _remembered_reference(raw, name)
        return _parsed_reference(raw, name)
    collection = query.get(f"{name}[collection]")
    object_id = query.get(f"{name}[object_id]")
    return Recipient.object(
        _identifier(name, "collection", collection), _identifier(name, "object_id", object_id)
    )


@functools.lru_cache(maxsize=_MAX_REFERENCES)
def _remembered_reference(raw: str, name: str) -> Recipient:
    return _parsed_reference(raw, name)


def _parsed_reference(raw: str, name: str) -> Recipient:
    try:
        parsed = inputs.loads(raw)
    except ValueError:
        raise InvalidParams.field(
            name, "must be a JSON object with collection and object_id"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidParams.field(name, "must be a JSON object with collection and object_id")
    return Recipient.object(
        _identifier(name, "collection", parsed.get("collection")),
        _identifier(name, "object_id", parsed.get("object_id")),
    )


def _identifier(name: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParams.field(f"{name}.{field}", "is required (a non-empty string)")
    problem = inputs.identifier_problem(value)
    if problem is not None:
        raise InvalidParams.field(f"{name}.{field}", problem)
    return value


def query_options(query: MultiMapping[str]) -> Mapping[str, str]:
    """Merge `query_options[x]` and `query_options.x`; the dotted form wins (SDK page 2+)."""
    options: dict[str, str] = {}
    dotted: dict[str, str] = {}
    for key, value in query.items():
        if key.startswith("query_options[") and key.endswith("]"):
            options[key[len("query_options[") : -1]] = value
        elif key.startswith("query_options."):
            dotted[key[len("query_options.") :]] = value
    options.update(dotted)
    return options


def boolean(options: Mapping[str, str], name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"true", "1"}:
        return True
    if value.lower() in {"false", "0"}:
        return False
    raise InvalidParams.field(f"query_options.{name}", "must be true or false")


def integer(options: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    value = options.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidParams.field(f"query_options.{name}", "must be an integer") from None
    if not low <= number <= high:
        raise InvalidParams.field(f"query_options.{name}", f"must be between {low} and {high}")
    return number


def revoked_body(is_secret_key: bool) -> object:
    """revoke_access's answer: SlackKit and TeamsKit compare the body to the bare string "ok"
    (useSlackAuth.ts, useMsTeamsAuth.ts); the spec and the SDKs say {"ok": "ok"}."""
    return {"ok": "ok"} if is_secret_key else "ok"
