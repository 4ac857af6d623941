"""Conditional requests (RFC 9110 section 13): If-Match and If-None-Match, for every route.

The headers are parsed once, with Werkzeug's entity-tag parser (RFC 9110 section 8.8.3:
`*` or a comma-separated list of strong or weak tags; a tag that is not well formed is
kept as a tag that matches nothing, never a 400), and decided in one of three places:

- The request binds the header to a `taskmgr.api.v1.VersionMatch` field (the unsafe
  methods on a resource with an ETag: PATCH, DELETE and assign of a task). Only the
  service that owns the data can compare the version and write in one transaction, so
  the condition travels in the request: `*` as `any`, and the tags that can equal a
  version under the header's comparison (section 8.8.3.2) as `versions`, strong tags
  only for If-Match (strong comparison, section 13.1.1), weak ones too for
  If-None-Match (weak comparison, section 13.1.2). A list travels as a list; a header
  naming no possible version travels as an empty list, which the service refuses (412).
- A safe method (GET, HEAD) is evaluated here against the ETag of the answer it is about
  to send: reading changes nothing, so nothing can race. If-Match failing is 412;
  If-None-Match matching is 304 with the ETag and no body (sections 13.1.2, 15.4.5).
- Any other unsafe route has no entity tag: a listed tag can never match (If-Match
  fails, If-None-Match holds); `*` refers to the target, which exists or the backend
  answers 404, so `If-Match: *` holds and `If-None-Match: *` fails.

Conditions are evaluated in the order of section 13.2.2, If-Match first. Failures found
before the change (401, 403, 404, 400) take precedence (section 13.2.1): the edge checks
authentication first, and the service decides the version last.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import request
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags

from edge_api import options
from edge_api.errors import EdgeProblem

if TYPE_CHECKING:
    from edge_api.contract import Route

IF_MATCH = "if-match"
IF_NONE_MATCH = "if-none-match"
CONDITION_HEADERS = (IF_MATCH, IF_NONE_MATCH)
VERSION_MATCH = "taskmgr.api.v1.VersionMatch"
SAFE_METHODS = ("GET", "HEAD")
# A version as an ETag spells it: canonical decimal, so `"03"` is not version 3 (strong
# comparison is octet equality of the opaque tags, RFC 9110 section 8.8.3.2).
_VERSION_TAG = re.compile(r"0|[1-9][0-9]{0,18}")
_INT64_MAX = 2**63 - 1


class NotModified(Exception):
    """GET with a matching If-None-Match: answer 304 instead of the representation."""


def check_binding(method_name: str, header: str, field: FieldDescriptor) -> None:
    """Refuses, when the contract is loaded, a condition header bound to anything but a
    VersionMatch: a scalar cannot carry `*` or a list."""
    if header.lower() in CONDITION_HEADERS and (
        field.message_type is None or field.message_type.full_name != VERSION_MATCH
    ):
        raise ValueError(f"{method_name}: {header} must be bound to a {VERSION_MATCH} field")


def fill_version_match(target: Message, header: str, value: str) -> None:
    """Sets `target` (a VersionMatch) from the If-Match or If-None-Match field value."""
    target.SetInParent()  # given, even when it names no possible version
    etags = parse_etags(value)
    if etags.star_tag:
        target.any = True
        return
    weak_too = header.lower() == IF_NONE_MATCH
    target.versions.extend(sorted(_versions(etags.as_set(include_weak=weak_too))))


def _versions(tags: set[str | None]) -> set[int]:
    # werkzeug's parse_etags gives None for an empty tag (`""`): it names no version.
    return {int(tag) for tag in tags if tag and _VERSION_TAG.fullmatch(tag) and int(tag) <= _INT64_MAX}


def check_before_call(route: Route) -> None:
    """An unsafe route whose request does not carry the conditions: evaluated here, on a
    resource with no entity tag (see the module docstring). Raises EdgeProblem(412)."""
    if route.verb in SAFE_METHODS:
        return
    bound = {header.lower() for header in route.header_fields}
    _evaluate(
        None if IF_MATCH in bound else request.headers.get("If-Match"),
        None if IF_NONE_MATCH in bound else request.headers.get("If-None-Match"),
        current_tag=None,
        safe=False,
    )


def check_response(route: Route, reply: Message) -> None:
    """A safe method, once its answer is known: raises EdgeProblem(412) or NotModified."""
    if request.method not in SAFE_METHODS:
        return
    _evaluate(
        request.headers.get("If-Match"),
        request.headers.get("If-None-Match"),
        current_tag=entity_tag(reply),
        safe=True,
    )


def entity_tag(reply: Message) -> str | None:
    """The opaque tag of the answer's ETag (the field bound to it), or None."""
    for field in reply.DESCRIPTOR.fields:
        if options.http_header(field).lower() == "etag":
            if field.has_presence and not reply.HasField(field.name):
                return None
            return str(getattr(reply, field.name))
    return None


def _evaluate(
    if_match: str | None, if_none_match: str | None, *, current_tag: str | None, safe: bool
) -> None:
    # Every target here exists (the backend answered, or answers 404 first), so `*`
    # matches; a listed tag matches only the current tag, and nothing when there is none.
    if if_match is not None and not _matches(parse_etags(if_match), current_tag, weak=False):
        raise precondition_failed()
    if if_none_match is not None and _matches(parse_etags(if_none_match), current_tag, weak=True):
        if safe:
            raise NotModified()
        raise precondition_failed()


def _matches(etags: ETags, current_tag: str | None, *, weak: bool) -> bool:
    if etags.star_tag:
        return True
    if current_tag is None:
        return False
    return etags.contains_weak(current_tag) if weak else etags.contains(current_tag)


def precondition_failed() -> EdgeProblem:
    return EdgeProblem(
        412,
        "The resource does not match the request's If-Match or If-None-Match; reload it.",
        "VERSION_MISMATCH",
    )
