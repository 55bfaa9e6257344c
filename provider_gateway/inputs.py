"""Rules for what callers may send as identifiers and JSON, shared by every entry point.

Identifiers end up in SQL parameters (PostgreSQL refuses NUL bytes and values longer than their
columns) and in upstream requests; JSON comes from browsers and callbacks. Both are bounded
here, so hostile input is a clear 4xx and never reaches a driver or blows the stack.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

MAX_ID_LENGTH = 255  # the width of every id column
MAX_JSON_DEPTH = 32  # Knock's shapes nest a few levels; nothing legitimate comes near this
MAX_ROW_ID = 2**31 - 1  # the largest id of an Integer column (PostgreSQL's int4)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def identifier_problem(value: str, *, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why `value` cannot be an identifier, or None when it can."""
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    if has_control_characters(value):
        return "must not contain control characters"
    return None


def is_identifier(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and identifier_problem(value) is None


def bounded_integer(value: str, high: int) -> int | None:
    """`value` as an integer from 0 to `high` when it is written in ASCII digits, else None.

    `str.isdigit()` alone let "²" through to `int()` (a ValueError, so a 500), and a number past
    an int4 column reached PostgreSQL (a DataError, so a 500)."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
        return None
    number = int(value)
    return number if number <= high else None


def loads(raw: str | bytes) -> Any:
    """`json.loads`, but a document nested deeper than MAX_JSON_DEPTH is a ValueError, not a
    RecursionError (3,000 `[` used to reach the error middleware as a 500)."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Iterative, so checking depth cannot itself recurse."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
