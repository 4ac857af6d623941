"""One running system for the whole e2e session (see tests/support/stack.py).

Every e2e module is marked `xdist_group("e2e")`, so under `--dist loadgroup` they all
run on the worker that built the stack, and it is built once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from tests.support.stack import Stack, Tokens


@pytest.fixture(scope="session")
def stack(postgres, rabbitmq, tmp_path_factory) -> Iterator[Stack]:
    running = Stack(postgres, rabbitmq, tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture
def client(stack: Stack) -> FlaskClient:
    return stack.client()


@pytest.fixture
def new_name() -> Callable[[str], str]:
    """A username no other test uses (the stack is shared by the whole session)."""
    return lambda hint: f"{hint}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(stack: Stack, new_name) -> Tokens:
    return stack.register_and_verify(new_name("user"))
