"""A process's first connection switches its SQLite file to WAL even while another
process, starting at the same moment, is writing to it in rollback mode: SQLite answers
that switch "database is locked" at once rather than waiting, so it is tried again."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import text

from common.db import create_db_engine


def test_the_switch_to_wal_waits_for_a_write_in_rollback_mode(tmp_path) -> None:
    path = tmp_path / "starting.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # rollback journal
    writer.execute("CREATE TABLE t (n INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, lambda: writer.execute("COMMIT")).start()
    engine = create_db_engine(f"sqlite:///{path}")
    started = time.monotonic()
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()
        writer.close()
    assert time.monotonic() - started >= 0.4  # it waited for the write rather than failing
