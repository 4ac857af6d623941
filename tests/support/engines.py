"""The two database engines every service runs on: PostgreSQL (production) and the
embedded SQLite default (`make run`). Tests of rules that depend on the engine (locks,
transactions, ids, constraints) run on both, through these fixtures' parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINES = ("postgresql", "sqlite")


def database_url(request: pytest.FixtureRequest, engine: str, directory: Path, name: str) -> str:
    """A fresh, empty database on `engine`: a new PostgreSQL database (dropped at the end
    of the run) or a SQLite file `name`.db in `directory`."""
    if engine == "postgresql":
        return request.getfixturevalue("postgres").create_database()
    return f"sqlite:///{directory / f'{name}.db'}"
