"""Password policy and hashing.

Policy (security.md, after NIST 800-63B): 8-128 characters, not a common password, not
containing the username; no composition rules. Hashing is argon2id with the settings'
parameters, at most `concurrency` hashes at a time so a login flood cannot exhaust memory.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 8
MAX_LENGTH = 128


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
    """argon2id hashing behind a bounded semaphore."""

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        # Checked against when the username is unknown, so that answer takes as long.
        self._dummy_hash = self.hash("not a real password, only spends the time")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, spends the same time and says no."""
        with self._slots:
            try:
                matched = self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
