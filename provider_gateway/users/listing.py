"""`GET /v1/users` parameters and Knock's ListUsersResponse, with opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provider_gateway import inputs
from provider_gateway.errors import InvalidParams
from provider_gateway.storage.users import UserPage
from provider_gateway.users.models import user_json

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
_CURSOR_PREFIX = "user:"


@dataclass(frozen=True)
class ListQuery:
    page_size: int
    descending: bool
    after: int | None
    before: int | None

    @classmethod
    def from_params(cls, params: Mapping[str, str], include: list[str]) -> ListQuery:
        """`after`/`before` (page_info cursors), `page_size`, `order` (knockapi), `include[]`."""
        if include:
            raise InvalidParams.field(
                "include", "is not supported: this service keeps no preferences"
            )
        if params.get("after") and params.get("before"):
            raise InvalidParams.field("before", "cannot be combined with after")
        order = params.get("order") or "asc"
        if order not in {"asc", "desc"}:
            raise InvalidParams.field("order", "must be asc or desc")
        size = inputs.bounded_integer(
            params.get("page_size") or str(DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE
        )
        if not size:
            raise InvalidParams.field("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        return cls(
            page_size=size,
            descending=order == "desc",
            after=decode_cursor("after", params.get("after")),
            before=decode_cursor("before", params.get("before")),
        )


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(field: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        position = inputs.bounded_integer(text.removeprefix(_CURSOR_PREFIX), inputs.MAX_ROW_ID)
        if text.startswith(_CURSOR_PREFIX) and position is not None:
            return position
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidParams.field(field, "is not a cursor this API returned")


def page_json(page: UserPage, page_size: int) -> dict[str, Any]:
    """Knock's ListUsersResponse: `entries` and `page_info` {after, before, page_size}."""
    users = page.users
    return {
        "entries": [user_json(user) for user in users],
        "page_info": {
            "__typename": "PageInfo",
            "after": encode_cursor(users[-1].position) if page.has_after else None,
            "before": encode_cursor(users[0].position) if page.has_before else None,
            "page_size": page_size,
        },
    }
