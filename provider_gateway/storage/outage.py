"""A database that cannot be reached becomes one typed error, raised at the storage boundary.

Whatever the driver raises while the database is down (asyncpg's connection refused or reset,
the server shutting down or starting up, SQLAlchemy's invalidated connections and pool
timeouts, SQLite still locked after its busy timeout) leaves every connection of the engine as
`DatabaseUnavailable`, with a short reason that names no host, user or password. Callers above
the stores then handle one exception: the API answers 503 with Retry-After, /readyz 503, an
OAuth popup its authFailed page. Other errors (constraint violations, bugs) pass unchanged.
"""

from __future__ import annotations

import socket
import sqlite3
from typing import Any

from sqlalchemy import exc as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Seconds a caller is told to wait: outages worth a 503 (failover, restart) last seconds.
RETRY_AFTER_SECONDS = 2

# SQLSTATE classes and codes that mean "the database is not there for us right now".
_UNAVAILABLE_SQLSTATES = {
    "08": "connection to the database failed",  # connection exception
    "57P01": "database shutting down",  # admin_shutdown
    "57P02": "database shutting down",  # crash_shutdown
    "57P03": "database starting up",  # cannot_connect_now
    "53300": "database has no free connection",  # too_many_connections
    "57014": "database did not answer in time",  # query_canceled (statement_timeout)
}
_NETWORK_ERRORS = (OSError, socket.gaierror, socket.herror)
_SQLITE_UNAVAILABLE = ("unable to open", "disk i/o error")


class DatabaseUnavailable(Exception):
    """The database could not be reached or did not answer in time; retrying later may work."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def outage_of(error: BaseException) -> DatabaseUnavailable | None:
    """The outage `error` means, or None when it is some other failure."""
    if isinstance(error, DatabaseUnavailable):
        return error
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        reason = _reason(link)
        if reason is not None:
            return DatabaseUnavailable(reason)
        # SQLAlchemy keeps the driver's error in `orig`; adapters chain theirs as the cause.
        orig = getattr(link, "orig", None)
        link = orig if isinstance(orig, BaseException) else link.__cause__
    return None


def _reason(error: BaseException) -> str | None:
    if isinstance(error, sa.TimeoutError):
        return "no free database connection (pool timeout)"
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return "connection to the database lost"
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        for prefix, reason in _UNAVAILABLE_SQLSTATES.items():
            if sqlstate.startswith(prefix):
                return reason
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        if "locked" in message or "busy" in message:
            return "database is locked (busy timeout passed)"
        if any(marker in message for marker in _SQLITE_UNAVAILABLE):
            return "database file unavailable"
    if isinstance(error, ConnectionRefusedError):
        return "database refused the connection"
    if isinstance(error, (ConnectionError, TimeoutError)):
        return "connection to the database failed"
    if type(error) in _NETWORK_ERRORS:  # not their subclasses: a missing file is no outage
        return "cannot reach the database"  # e.g. no route, a host name that does not resolve
    return None


class _GuardedConnection(AsyncConnection):
    """Translates outages as the connection is opened, used (errors leave the `async with`
    body through __aexit__), committed or closed."""

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await super().__aenter__()
        except Exception as error:
            _raise_outage(error)
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        except Exception as error:
            _raise_outage(error)
            raise
        if isinstance(value, Exception):
            _raise_outage(value)


class GuardedEngine(AsyncEngine):
    """An AsyncEngine whose connections (`connect()` and `begin()` alike, since `begin()`
    enters a `connect()`) raise `DatabaseUnavailable` for outages.

    `_connection_cls` is the hook AsyncEngine.connect() builds its connections from; the
    outage tests (tests/test_database_outage.py) fail if a SQLAlchemy upgrade stops using it.
    """

    __slots__ = ()
    _connection_cls = _GuardedConnection

    @classmethod
    def _regenerate_proxy_for_target(cls, target: Engine, **_kw: Any) -> GuardedEngine:
        return cls(target)


def guarded(engine: AsyncEngine) -> GuardedEngine:
    return GuardedEngine(engine.sync_engine)


def _raise_outage(error: Exception) -> None:
    """Raise the outage `error` means, if it means one."""
    if isinstance(error, DatabaseUnavailable):
        return  # already translated (an inner connection's): let it go on as it is
    outage = outage_of(error)
    if outage is not None:
        raise outage from error
