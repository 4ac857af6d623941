"""Which errors mean "a dependency is away" (UNAVAILABLE), by SQLSTATE class and kind."""

from __future__ import annotations

import sqlite3

import grpc
import psycopg
import pytest
from pika.exceptions import AMQPConnectionError
from psycopg import errors as pg
from sqlalchemy import exc as sa_exc

from common.amqp import BrokerUnavailable
from common.faults import database_away, dependency_away


def wrapped(original: Exception, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    driver_base = sqlite3.Error if isinstance(original, sqlite3.Error) else psycopg.Error
    return sa_exc.DBAPIError.instance(
        "SELECT 1", {}, original, driver_base, connection_invalidated=invalidated
    )


class PeerError(grpc.RpcError, grpc.Call):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def __getattr__(self, name):  # noqa: ANN001, ANN204 (the rest of grpc.Call is unused)
        raise AttributeError(name)


@pytest.mark.parametrize(
    "original",
    [
        pg.AdminShutdown("terminating connection due to administrator command"),  # 57P01
        pg.CannotConnectNow("the database system is starting up"),  # 57P03
        pg.CrashShutdown("crash"),  # 57P02
        pg.TooManyConnections("too many connections for role"),  # 53300
        pg.DiskFull("could not extend file"),  # 53100
        pg.ConnectionFailure("connection failure"),  # 08006
        pg.QueryCanceled("canceling statement due to statement timeout"),  # 57014
        psycopg.OperationalError("connection refused"),  # libpq, no SQLSTATE
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("database table is locked: t"),
    ],
)
def test_connection_class_errors_are_away(original):
    assert database_away(wrapped(original))
    assert dependency_away(wrapped(original))


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pg.UndefinedTable("relation does not exist")),  # a bug
        wrapped(pg.StringDataRightTruncation("value too long")),  # bad data
        wrapped(pg.UniqueViolation("duplicate key")),
        wrapped(pg.ProgramLimitExceeded("statement too complex")),  # an OperationalError, class 54
        wrapped(pg.SerializationFailure("could not serialize")),  # a conflict, not an outage
        wrapped(sqlite3.OperationalError("no such table: t")),
        ValueError("a bug"),
        PeerError(grpc.StatusCode.NOT_FOUND),
        PeerError(grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_other_errors_are_not(error):
    assert not dependency_away(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pg.UndefinedTable("whatever"), invalidated=True),  # SQLAlchemy saw the connection die
        sa_exc.TimeoutError("QueuePool limit reached, connection timed out"),
        sa_exc.DisconnectionError("stale"),
        BrokerUnavailable("no broker"),
        AMQPConnectionError("refused"),
        ConnectionRefusedError(111, "refused"),
        PeerError(grpc.StatusCode.UNAVAILABLE),
        PeerError(grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_disconnects_pools_brokers_and_peers_are_away(error):
    assert dependency_away(error)
