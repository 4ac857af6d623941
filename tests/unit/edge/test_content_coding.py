"""A request body with a content coding (RFC 9110 section 8.4.1): the edge decodes none,
so it refuses every coding but identity with 415 and `Accept-Encoding: identity`
(sections 12.5.3 and 15.5.16), before any backend sees the body. Before, a body sent as
`Content-Encoding: gzip` (or br, deflate, zstd, ...) was read as if it were plain JSON:
taken when it was not really coded, refused as "not UTF-8" (400) when it was."""

from __future__ import annotations

import gzip
import zlib

import pytest

PROBLEM = "application/problem+json"
BODY = b'{"name": "n"}'


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", BODY),  # says gzip, is not: was taken as plain JSON (200)
        # mtime=0: the same bytes, so the same test id, in every pytest-xdist worker
        ("gzip", gzip.compress(BODY, mtime=0)),  # really gzip: was a 400 MALFORMED_JSON
        ("deflate", zlib.compress(BODY)),
        ("br", BODY),
        ("zstd", BODY),
        ("x-gzip", BODY),
        ("GZIP", BODY),
        ("identity, gzip", BODY),
        ("gzip, identity", BODY),
    ],
)
def test_a_coded_body_is_415_with_accept_encoding(client, servicer, coding, body):
    calls = len(servicer.requests)

    response = client.post(
        "/api/things/5/rename/", data=body, content_type="application/json",
        headers={"Content-Encoding": coding},
    )

    assert response.status_code == 415, response.data[:200]
    assert response.mimetype == PROBLEM
    assert response.json["status"] == 415
    named = next(part.strip().lower() for part in coding.split(",") if part.strip().lower() != "identity")
    assert f"Content-Encoding: {named})" in response.json["detail"]
    assert response.headers["Accept-Encoding"] == "identity"
    assert len(servicer.requests) == calls  # no backend call


@pytest.mark.parametrize("coding", ["identity", "IDENTITY", "", " "])
def test_no_coding_or_identity_is_read_as_it_is(client, servicer, coding):
    response = client.post(
        "/api/things/5/rename/", data=BODY, content_type="application/json",
        headers={"Content-Encoding": coding},
    )

    assert response.status_code == 200, response.data[:200]
    assert servicer.last.name == "n"


def test_a_coding_on_a_request_without_a_body_is_no_matter(client):
    response = client.delete("/api/things/5/", headers={"Content-Encoding": "gzip"})

    assert response.status_code in (200, 204), response.data[:200]
