"""Password policy and hashing.

Policy (security.md, after NIST 800-63B): 8-128 characters, not a common password, not
containing the username; no composition rules. Hashing is argon2id with the settings'
parameters, at most `concurrency` hashes at a time so a login flood cannot exhaust memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from common.contract_rules import string_rules
from common.errors import ResourceExhausted
from taskmgr.user.v1 import user_service_pb2 as pb

# The contract's limits for a new password (user_service.proto); the edge documents them.
MIN_LENGTH = string_rules(pb.RegisterRequest.DESCRIPTOR, "password").min_len
MAX_LENGTH = string_rules(pb.RegisterRequest.DESCRIPTOR, "password").max_len


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list is lower-case, ranked by frequency in leaked password dumps.
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, username: str = "") -> list[str]:
    """Why `password` is refused (empty when it is acceptable)."""
    if len(password) < MIN_LENGTH:
        return [f"At least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"At most {MAX_LENGTH} characters."]
    problems = []
    if password.lower() in _common_passwords():
        problems.append("This password is too common.")
    if username and username.lower() in password.lower():
        problems.append("The password must not contain the username.")
    return problems


class Passwords:
    """argon2id hashing behind a bounded semaphore.

    A call that cannot get a slot within `queue_seconds` is shed with RESOURCE_EXHAUSTED
    (429 with Retry-After) instead of queueing until the caller's deadline runs out.
    """

    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost_kib: int,
        parallelism: int,
        concurrency: int,
        queue_seconds: float = 2.0,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._queue_seconds = queue_seconds
        # Checked against when the username is unknown, so that answer takes as long.
        self._dummy_hash = self.hash("not a real password, only spends the time")

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._queue_seconds):
            raise ResourceExhausted(
                "SERVER_BUSY", "Too many password checks at once; try again shortly.", retry_after=1
            )
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        with self._slot():
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, spends the same time and says no."""
        with self._slot():
            try:
                matched = self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
