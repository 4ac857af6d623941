"""Version preconditions (taskmgr.api.v1.VersionMatch), checked by the service that owns
the resource against the version it has just read, inside the transaction that writes it.

RFC 9110 section 13.2.2 evaluates If-Match before If-None-Match; either failing on an
unsafe method is 412 Precondition Failed, which reaches HTTP as FAILED_PRECONDITION with
the reason VERSION_MISMATCH. The edge has already dropped tags that can never equal a
version under the header's comparison, so matching here is membership of an integer.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from common.errors import FailedPrecondition


@dataclass(frozen=True)
class VersionMatch:
    """One header's condition: `any` for `*`, else the versions it names (maybe none)."""

    any: bool
    versions: frozenset[int]

    def matches(self, current: int) -> bool:
        return self.any or current in self.versions


@dataclass(frozen=True)
class Preconditions:
    """If-Match and If-None-Match of one request; None where the header was not given."""

    if_match: VersionMatch | None = None
    if_none_match: VersionMatch | None = None

    @classmethod
    def from_request(cls, request: Message) -> Preconditions:
        """From a request message's `if_match` / `if_none_match` VersionMatch fields."""
        return cls(_condition(request, "if_match"), _condition(request, "if_none_match"))

    def check(self, current: int) -> None:
        """Raises FAILED_PRECONDITION (VERSION_MISMATCH) unless the resource, now at
        version `current`, meets both conditions (RFC 9110 sections 13.1.1, 13.1.2)."""
        if self.if_match is not None and not self.if_match.matches(current):
            raise version_mismatch(current)
        if self.if_none_match is not None and self.if_none_match.matches(current):
            raise version_mismatch(current)

    def __bool__(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None


NONE = Preconditions()


def _condition(request: Message, name: str) -> VersionMatch | None:
    if name not in request.DESCRIPTOR.fields_by_name or not request.HasField(name):
        return None
    given = getattr(request, name)
    return VersionMatch(any=given.any, versions=frozenset(given.versions))


def version_mismatch(current: int | None) -> FailedPrecondition:
    detail = f" (it is at version {current})" if current is not None else ""
    return FailedPrecondition(
        "VERSION_MISMATCH", f"The resource was changed since the version you have{detail}; reload it."
    )
