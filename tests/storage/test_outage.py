"""Which failures are database outages (503 with Retry-After) and which are not (they keep
their own handling): the classification the storage boundary applies."""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions
import pytest
from sqlalchemy import exc

from provider_gateway.storage.outage import DatabaseUnavailable, outage_of


def _wrapped(orig: BaseException, kind: type[exc.DBAPIError] = exc.OperationalError) -> Exception:
    return kind("SELECT 1", {}, orig)


def _adapted(cause: BaseException) -> Exception:
    """As SQLAlchemy's asyncpg adapter raises: its own error, the driver's as the cause."""
    adapter = RuntimeError("adapter error")
    adapter.__cause__ = cause
    return _wrapped(adapter, exc.InterfaceError)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "database refused the connection"),
        (ConnectionResetError(104, "reset by peer"), "connection to the database failed"),
        (TimeoutError(), "connection to the database failed"),
        (OSError(-2, "Name or service not known"), "cannot reach the database"),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), "database starting up"),
        (asyncpg.exceptions.AdminShutdownError("terminating"), "database shutting down"),
        (
            asyncpg.exceptions.TooManyConnectionsError("too many clients"),
            "database has no free connection",
        ),
        (_adapted(asyncpg.exceptions.ConnectionDoesNotExistError("closed")), "connection"),
        (_adapted(asyncpg.exceptions.QueryCanceledError("timeout")), "did not answer in time"),
        (
            exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
            "connection to the database lost",
        ),
        (exc.TimeoutError("QueuePool limit reached"), "pool timeout"),
        (_wrapped(sqlite3.OperationalError("database is locked")), "busy timeout passed"),
        (_wrapped(sqlite3.OperationalError("unable to open database file")), "file unavailable"),
    ],
)
def test_outages_are_database_unavailable_with_a_reason(error: Exception, reason: str) -> None:
    outage = outage_of(error)
    assert isinstance(outage, DatabaseUnavailable)
    assert reason in outage.reason


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), exc.IntegrityError),
        _adapted(asyncpg.exceptions.UniqueViolationError("duplicate key")),
        _wrapped(sqlite3.OperationalError("no such table: channel_data")),
        ValueError("a bug"),
        FileNotFoundError(2, "No such file"),
    ],
)
def test_other_failures_are_not_outages(error: Exception) -> None:
    assert outage_of(error) is None


def test_reasons_carry_nothing_of_the_driver_message() -> None:
    """A driver's text may hold a host, a user or a query; the reason is ours alone."""
    secret = "postgresql://gw:hunter2@db.internal:5432/gateway"
    outage = outage_of(ConnectionRefusedError(111, f"Connect call failed {secret}"))
    assert outage is not None
    assert "hunter2" not in outage.reason
    assert "db.internal" not in outage.reason
