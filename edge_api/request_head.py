"""Rules on the request head (request line and header fields), checked before routing.

The HTTP server's own limits are set above these (edge_api.server), so it is the app
that refuses, with a problem+json answer like any other:

- a request target longer than MAX_URI_BYTES: 414 URI Too Long (RFC 9110 section 15.5.15;
  section 4.1 asks recipients to take at least 8000 octets);
- a header section larger than MAX_HEADER_BYTES: 431 Request Header Fields Too Large
  (RFC 6585 section 5);
- a method that is not one of METHODS, exactly as registered: 501 Not Implemented
  (RFC 9110 section 15.6.2: the server does not recognize it, for any resource). Method
  names are case-sensitive (section 9.1): `get` is no GET, though Werkzeug upper-cases
  the method it routes by and would serve it as one. A registered method that the path
  does not offer stays 405 with Allow (section 15.5.6), answered by routing;
- a path that is not in canonical form: 404, never a redirect and never another resource.
  Routing never redirects: a trailing slash is optional on every route (the contract's
  routes are registered in both forms already), `//` is not merged.
  Werkzeug would merge `//` and redirect to the merged path, and would route a `..`
  segment or an encoded `/` (`%2F`) like the path it decodes to: a client or a proxy in
  front would see one resource while the edge served another. Canonical means no empty
  segment (`//`), no dot segment (`.`, `..`, also as `%2E`) and, where the server passes
  the raw target (RAW_URI, REQUEST_URI: gunicorn, Werkzeug), no encoded `/`
  (RFC 3986 sections 3.3 and 6.2.2). granian passes only the decoded path: there an
  encoded `/` cannot be told from a real one.
"""

from __future__ import annotations

import re

from flask import Flask, request
from werkzeug.exceptions import NotFound, RequestHeaderFieldsTooLarge, RequestURITooLarge
from werkzeug.exceptions import NotImplemented as MethodNotImplemented

# RFC 9110 section 9 methods plus PATCH (RFC 5789): the ones this server recognizes. Also
# the allow-list of the metrics' method label (edge_api.ops).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
MAX_URI_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)
_DOT_SEGMENTS = frozenset({".", ".."})


class NonCanonicalPath(NotFound):
    code = 404
    description = (
        "No resource has this path: it has an empty segment (//), a dot segment (. or ..) "
        "or an encoded '/'. Paths are matched as sent, never rewritten or redirected."
    )


def register_request_head_rules(app: Flask) -> None:
    """Checks every request's head before routing acts on it; register it right after the
    request id (which every problem carries), before limits and views."""
    # Werkzeug redirects (308) a path missing its rule's trailing slash, a `//` and a
    # default value spelled out; a redirect computed from a decoded path can point
    # elsewhere than the client asked. Rules added from here on inherit these.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    app.before_request(check_request_head)


def check_request_head() -> None:
    """Raises MethodNotImplemented (501), RequestURITooLarge (414),
    RequestHeaderFieldsTooLarge (431) or NonCanonicalPath (404); the app's HTTPException
    handler turns them into problems."""
    environ = request.environ
    if environ.get("REQUEST_METHOD") not in METHODS:  # as sent: request.method is upper-cased
        raise MethodNotImplemented("The server does not implement this method (names are case-sensitive).")
    raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = environ.get("PATH_INFO", "")
    if raw_target is not None:
        target_bytes = len(raw_target.encode("latin-1", "replace"))
    else:  # the decoded path: never longer than the target as sent
        target_bytes = len(path.encode("latin-1", "replace")) + len(environ.get("QUERY_STRING", "")) + 1
    if target_bytes > MAX_URI_BYTES:
        raise RequestURITooLarge(f"The request target is longer than {MAX_URI_BYTES} bytes.")
    if _header_bytes(environ) > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(f"The header fields are larger than {MAX_HEADER_BYTES} bytes.")
    if not is_canonical(path, raw_target):
        raise NonCanonicalPath()


def is_canonical(path: str, raw_target: str | None = None) -> bool:
    """Whether a decoded WSGI PATH_INFO (and the raw target, when known) names a path in
    canonical form: starts with `/`, no empty segment but a trailing one, no dot segment,
    no encoded `/`."""
    if not path.startswith("/"):
        return False
    segments = path[1:].split("/")
    if segments[-1] == "":
        segments.pop()  # a trailing slash is part of this API's paths
    if any(segment == "" or segment in _DOT_SEGMENTS for segment in segments):
        return False
    if raw_target is not None:
        raw_path = raw_target.split("?", 1)[0]
        if _ENCODED_SLASH.search(raw_path):
            return False
    return True


def _header_bytes(environ: dict) -> int:
    # As on the wire: "Name: value\r\n" per field. WSGI joins repeated fields with ",".
    fields = [(key[5:], value) for key, value in environ.items() if key.startswith("HTTP_")]
    fields += [(key, environ[key]) for key in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(key)]
    return sum(len(name) + len(str(value)) + 4 for name, value in fields)
