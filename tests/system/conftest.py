"""The product started as real processes, the way `make run` starts it (tests/support/processes.py).

Every module here is marked `slow` and `xdist_group("system")`: under `--dist loadgroup`
they run on one worker, one after the other, so they never fight over ports or CPU and
the session's stack is built once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.processes import ProcessStack
from tests.system.accounts import Account, register_and_login


@pytest.fixture(scope="session")
def process_stack(tmp_path_factory) -> Iterator[ProcessStack]:
    """The embedded default (SQLite, no broker, console email): what `make run` gives a newcomer."""
    # Reminders looked for every second, not every minute: the README's reminder shows at once.
    stack = ProcessStack(
        tmp_path_factory.mktemp("process-stack"), extra_env={"TASK_REMINDER_INTERVAL_SECONDS": "1"}
    ).start()
    yield stack
    stack.stop()


@pytest.fixture
def new_account(process_stack: ProcessStack) -> Callable[[str], Account]:
    return lambda hint="user": register_and_login(process_stack, hint)
