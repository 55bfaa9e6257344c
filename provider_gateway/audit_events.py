"""`GET /v1/audit_events`: who connected, revoked or changed what, for a secret-key caller."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from provider_gateway import inputs
from provider_gateway.errors import Forbidden, InvalidParams
from provider_gateway.storage.audit import AuditEvent, AuditQuery
from provider_gateway.web.appkeys import GATEWAY, PRINCIPAL

routes = web.RouteTableDef()
MAX_PAGE_SIZE = 100


@routes.get("/v1/audit_events")
async def list_audit_events(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    if not principal.is_secret:
        raise Forbidden("The audit log needs a secret key")
    query = audit_query(request.query, principal.environment.id)
    events = await request.app[GATEWAY].audit.search(query)
    after = encode_cursor(events[-1].id) if len(events) == query.limit else None
    return web.json_response(
        {
            "entries": [event_json(event) for event in events],
            "page_info": {"after": after, "page_size": query.limit},
        }
    )


def audit_query(params: MultiMapping[str], environment_id: str | None) -> AuditQuery:
    target = params.get("target")
    if params.get("collection") or params.get("object_id"):
        if not (params.get("collection") and params.get("object_id")):
            raise InvalidParams.field("object_id", "collection and object_id go together")
        target = f"objects/{params['collection']}/{params['object_id']}"
    elif params.get("user_id"):
        target = f"users/{params['user_id']}"
    return AuditQuery(
        environment_id=environment_id,
        target=target,
        channel_id=params.get("channel_id") or None,
        actions=tuple(params.getall("action", [])),
        starting_at=_timestamp(params, "starting_at"),
        ending_at=_timestamp(params, "ending_at"),
        before_id=decode_cursor(params.get("after")),
        limit=_page_size(params.get("page_size")),
    )


def event_json(event: AuditEvent) -> dict[str, Any]:
    entry = event.entry
    return {
        "id": event.id,
        "occurred_at": event.occurred_at.isoformat(),
        "action": entry.action,
        "actor": entry.actor,
        "channel_id": entry.channel_id,
        "target": entry.target,
        "details": entry.revealed(),
    }


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        event_id = inputs.bounded_integer(text.removeprefix("audit:"), inputs.MAX_ROW_ID)
        return event_id if text.startswith("audit:") and event_id is not None else _bad_cursor()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return _bad_cursor()


def _bad_cursor() -> int:
    raise InvalidParams.field("after", "is not a cursor this API returned")


def _timestamp(params: MultiMapping[str], name: str) -> datetime | None:
    value = params.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # UTC always: SQLite keeps naive UTC timestamps and would ignore another offset.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidParams.field(name, "must be an ISO 8601 timestamp") from None
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first moment in UTC
        raise InvalidParams.field(name, "is out of range") from None


def _page_size(value: str | None) -> int:
    if not value:
        return 50
    size = inputs.bounded_integer(value, MAX_PAGE_SIZE)
    if not size:
        raise InvalidParams.field("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    return size
