"""Which failures mean a dependency is away, for every service and every engine.

A dependency that is away (the database restarting or refusing connections, the broker,
a peer service) is no fault of the request: the caller is told UNAVAILABLE with a
RetryInfo delay (HTTP 503 with Retry-After at the edge, RFC 9110 section 15.6.4) and may
try again. Everything else that escapes a handler stays INTERNAL.

The database half follows the SQLSTATE classes of the SQL standard as PostgreSQL uses
them (PostgreSQL manual, appendix A): class 08 (connection exception), 53 (insufficient
resources, e.g. too many connections) and 57 (operator intervention: admin shutdown,
"the database system is starting up", a cancelled statement). libpq failures without a
SQLSTATE (connection refused, server closed the connection) and anything SQLAlchemy
itself recognised as a disconnect count too. On SQLite the one such condition is a
database still locked after the busy timeout (SQLITE_BUSY / SQLITE_LOCKED).
"""

from __future__ import annotations

import sqlite3

import grpc
import psycopg
from pika.exceptions import AMQPConnectionError
from sqlalchemy import exc as sa_exc

# Seconds a caller is asked to wait before trying again (RetryInfo / Retry-After).
RETRY_AFTER_SECONDS = 1.0

_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# A peer's answers that mean "no answer now", not "no".
_PEER_AWAY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def is_disconnect(error: BaseException) -> bool:
    """True when SQLAlchemy found the connection itself dead (it was invalidated, and the
    pool discards every connection older than it): the unit of work was not committed
    unless its COMMIT had been sent."""
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def database_away(error: BaseException) -> bool:
    """True for a connection-class database error (see the module docstring)."""
    if is_disconnect(error) or isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # TimeoutError: no pooled connection came free in time
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(original, psycopg.OperationalError):
        state = original.sqlstate
        return state is None or state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    return is_sqlite_busy(original)


def is_sqlite_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" family (SQLITE_BUSY / SQLITE_LOCKED)."""
    return isinstance(error, sqlite3.OperationalError) and str(error).lower().startswith(_SQLITE_BUSY)


def dependency_away(error: BaseException) -> bool:
    """True when `error` means a dependency is away: the database (database_away), the
    broker or a socket to any dependency (ConnectionError, pika's connection errors), or
    a peer gRPC service that answered UNAVAILABLE or DEADLINE_EXCEEDED."""
    if database_away(error) or isinstance(error, (ConnectionError, AMQPConnectionError)):
        return True
    return isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call) and error.code() in _PEER_AWAY
