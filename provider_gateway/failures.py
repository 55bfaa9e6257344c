"""Every way a command can fail, as the one line the operator reads (no traceback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from provider_gateway.config import Settings

# Local file problems (a data dir that cannot be created, say) are not the database's.
_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class PortInUse(Exception):
    """The address cannot be listened on; the message says what to do."""


def port_taken(host: str, port: int, error: OSError) -> PortInUse:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return PortInUse(f"cannot listen on {host}:{port} ({reason}); try --port {port + 1}")


class DatabaseFailure(Exception):
    """The database could not be reached or refused; the message says "database"."""


@contextmanager
def database_errors(settings: Settings) -> Iterator[None]:
    """Name the database (password masked) in what goes wrong while talking to it."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from provider_gateway.storage.database import display_url
    from provider_gateway.storage.outage import DatabaseUnavailable

    try:
        yield
    except DatabaseUnavailable as exc:
        # The driver's own first line says more to an operator than the category does.
        cause = exc.__cause__
        if isinstance(cause, DBAPIError):
            cause = cause.orig
        detail = _first_line(cause) if cause is not None else exc.reason
        raise DatabaseFailure(
            f"cannot reach the database at {display_url(settings)}: {detail}"
        ) from None
    except DBAPIError as exc:
        raise DatabaseFailure(
            f"database error at {display_url(settings)}: {_first_line(exc.orig)}"
        ) from None
    except SQLAlchemyError as exc:
        raise DatabaseFailure(
            f"database error at {display_url(settings)}: {type(exc).__name__}"
        ) from None
    except OSError as exc:
        if isinstance(exc, _FILE_ERRORS):
            raise
        raise DatabaseFailure(
            f"cannot reach the database at {display_url(settings)}: {_first_line(exc)}"
        ) from None


def describe_failure(exc: Exception) -> str | None:
    """The line to print for `exc`, or None for a bug."""
    from provider_gateway.commands import CommandError
    from provider_gateway.config import ConfigError
    from provider_gateway.crypto import UndecryptableError
    from provider_gateway.errors import GatewayError

    expected = (
        ConfigError,
        CommandError,
        GatewayError,
        UndecryptableError,
        DatabaseFailure,
        PortInUse,
    )
    if isinstance(exc, expected):
        return str(exc)
    if isinstance(exc, OSError):
        return _first_line(exc)
    return None


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
