"""Knock's users wire: what an identify may carry, how it merges, the `User` it answers."""

from __future__ import annotations

import functools
import json
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from provider_gateway.errors import InvalidParams
from provider_gateway.storage.users import Properties, StoredUser

MAX_ID_LENGTH = 255
MAX_NESTING = 16  # levels of objects/arrays inside one custom property
STANDARD_FIELDS = ("name", "email", "phone_number", "avatar", "locale", "timezone")
# Set by this service, not by callers: ignored in a body, so a `User` read back may be sent again.
SERVER_FIELDS = frozenset({"__typename", "updated_at"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError("must be an email address")
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # the tzdata package backs it everywhere


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("must be a tz database time zone such as America/New_York")
    return value


def _timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time") from None
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


_Clean = AfterValidator(_no_control)
Text = Annotated[str, StringConstraints(max_length=1024), _Clean]
Email = Annotated[str, StringConstraints(max_length=320), _Clean, AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(max_length=64), _Clean]
Url = Annotated[str, StringConstraints(max_length=2048), _Clean]
Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,35}$")]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)]
Timestamp = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timestamp)]


class _StandardProperties(BaseModel):
    """Knock's IdentifyUserRequest fields; null removes one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Text | None = None
    email: Email | None = None
    phone_number: Phone | None = None
    avatar: Url | None = None
    locale: Locale | None = None
    timezone: TimeZone | None = None
    created_at: Timestamp | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def identifier(field: str, value: str) -> str:
    """A path value (user id, channel id): 1 to 255 characters, no control characters."""
    if not value or len(value) > MAX_ID_LENGTH:
        raise InvalidParams.field(field, f"must be 1 to {MAX_ID_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidParams.field(field, "must not contain control characters")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or 422: never a traceback, never NaN stored."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise InvalidParams.field("body", "is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidParams.field("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidParams.field("body", "must be a JSON object")
    return body


@dataclass(frozen=True)
class Identify:
    changes: Properties  # property -> new value; None removes it
    channel_data: dict[str, object]  # channel id -> data, as for the channel data API


def identify_request(user_id: str, body: dict[str, Any]) -> Identify:
    """Check an identify body whole; every offending field is named in one 422."""
    if body.get("preferences") is not None:
        raise InvalidParams.field(
            "preferences", "is not supported: this service keeps no preferences"
        )
    if "id" in body and body["id"] != user_id:
        raise InvalidParams.field("id", "must match the user id in the path (or be left out)")
    channel_data = body.get("channel_data")
    if channel_data is not None and not isinstance(channel_data, dict):
        raise InvalidParams.field("channel_data", "must map channel ids to channel data")
    errors: list[dict[str, str]] = []
    standard = {field: body[field] for field in (*STANDARD_FIELDS, "created_at") if field in body}
    try:
        checked = _StandardProperties.model_validate(standard).model_dump(exclude_unset=True)
    except ValidationError as exc:
        checked = {}
        errors += [
            {"field": str(e["loc"][0]), "message": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
    custom = {
        key: value
        for key, value in body.items()
        if key not in {*standard, *SERVER_FIELDS, "id", "channel_data", "preferences"}
    }
    errors += [error for key, value in custom.items() for error in _custom_errors(key, value)]
    if errors:
        raise InvalidParams(errors=errors)
    return Identify(changes={**custom, **checked}, channel_data=dict(channel_data or {}))


def _custom_errors(key: str, value: object) -> list[dict[str, str]]:
    if not key or len(key) > MAX_ID_LENGTH or _CONTROL.search(key):
        shown = _CONTROL.sub("?", key[:40])
        message = f"a property name must be 1 to {MAX_ID_LENGTH} characters, none of them control"
        return [{"field": shown, "message": message}]
    if _depth(value, MAX_NESTING + 1) > MAX_NESTING:
        return [{"field": key, "message": f"is nested more than {MAX_NESTING} levels deep"}]
    return []


def _depth(value: object, stop: int) -> int:
    """Nesting depth of a JSON value, counted no further than `stop`."""
    if stop <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, stop - 1) for child in children), default=0)


def merged(stored: Properties | None, changes: Properties) -> Properties:
    """Knock's identify semantics: named properties are replaced, others kept; null removes."""
    result = dict(stored or {})
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def user_json(user: StoredUser) -> dict[str, Any]:
    """Knock's `User`: standard fields (null when unset), then custom properties at top level."""
    properties = user.properties
    rendered: dict[str, Any] = {"__typename": "User", "id": user.user_id}
    rendered.update({field: properties.get(field) for field in STANDARD_FIELDS})
    rendered["created_at"] = properties.get("created_at")
    rendered["updated_at"] = iso(user.updated_at)
    rendered.update({key: value for key, value in properties.items() if key not in rendered})
    return rendered
