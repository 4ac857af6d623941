"""The transcoder on untrusted requests, through the real app and a real gRPC backend:
whatever the body, query string or path, the answer is the backend's or a 400/413/415
problem, never a 500 (issue 9, section 1)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from tests.unit.edge.test_input_codec import JSON_VALUES

PROBLEM = "application/problem+json"
LIMIT = 64 * 1024
# One app for many generated examples: hypothesis runs them inside one test.
_EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_handled(response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.data[:300])
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM
        assert response.json["status"] == response.status_code


@_EXAMPLES
@given(body=JSON_VALUES)
def test_any_json_body_is_answered_or_refused_as_400(client, body):
    response = client.post("/api/things/5/rename/", data=json.dumps(body), content_type="application/json")

    _assert_handled(response, 200, 400)


@_EXAMPLES
@given(body=st.binary(max_size=300))
def test_any_bytes_as_a_body_are_answered_or_refused_as_400(client, body):
    response = client.patch("/api/things/5/", data=body, content_type="application/json")

    _assert_handled(response, 200, 400)


@_EXAMPLES
@given(
    name=st.sampled_from(["page_size", "page_token", "kind", "tags", "due_before", "active", "other"]),
    value=st.text(max_size=40),
)
def test_any_query_value_is_answered_or_refused_as_400(client, name, value):
    response = client.get(f"/api/things/?{name}={quote(value, safe='')}")

    _assert_handled(response, 200, 400)


@_EXAMPLES
@given(value=st.text(min_size=1, max_size=30).filter(lambda text: text not in (".", "..")))
def test_any_path_value_is_answered_or_refused(client, value):
    response = client.get(f"/api/things/{quote(value, safe='')}/")

    _assert_handled(response, 200, 400, 404)


@pytest.mark.parametrize(
    "body",
    [b"[" * 1000, b'{"name": ' + b"[" * 33 + b"]" * 33 + b"}", b'{"name": "a", "name": "b"}',
     b'{"name": NaN}', b'{"name": "\\ud800"}', b"\xff"],
    ids=["1000-deep", "33-deep", "duplicate-name", "nan", "lone-surrogate", "not-utf-8"],
)
def test_bodies_that_are_not_acceptable_json_are_400_malformed_json(client, servicer, body):
    calls = len(servicer.requests)

    response = client.post("/api/things/5/rename/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json["code"] == "MALFORMED_JSON"
    assert len(servicer.requests) == calls


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("due_before=0001-01-01T00:00:00%2B01:00", "due_before"),  # OverflowError: a 500 before
        ("due_before=2030-01-01T00:00:00%2B00:90", "due_before"),  # 22:30 the day before
        ("due_before=%EF%BC%92%EF%BC%90%EF%BC%93%EF%BC%90-01-01T00:00:00Z", "due_before"),
        ("page_size=%D9%A1%D9%A2", "page_size"),
        ("page_size=1_000", "page_size"),
        ("page_size=%207%20", "page_size"),
        ("page_size=%2B7", "page_size"),
        ("page_size=07", "page_size"),
        ("active=True", "active"),
        ("active=1", "active"),
        ("kind=%20small", "kind"),
    ],
)
def test_query_values_not_in_their_wire_form_are_field_errors(client, query, field):
    response = client.get(f"/api/things/?{query}")

    assert response.status_code == 400
    assert set(response.json["errors"]) == {field}


def test_a_single_valued_query_parameter_given_twice_is_a_field_error(client, servicer):
    response = client.get("/api/things/?page_size=5&page_size=50&tags=a&tags=b")

    assert response.status_code == 400
    assert response.json["errors"] == {"page_size": ["given more than once"]}
    assert client.get("/api/things/?tags=a&tags=b").status_code == 200  # repeated fields take many
    assert list(servicer.last.tags) == ["a", "b"]


@pytest.mark.parametrize(
    "path",
    ["/api/things/%D9%A1/", "/api/things/007/", "/api/things/+7/", "/api/things/1_0/", "/api/things/-0/",
     "/api/things/99999999999999999999/"],
)
def test_ids_in_the_path_are_canonical_integers(client, path):
    response = client.get(path)

    assert response.status_code == 400
    assert set(response.json["errors"]) == {"id"}


@pytest.mark.parametrize(("given", "sent"), [("101", 101), ("10000000000", 2**31 - 1), ("9" * 20, 2**31 - 1)])
def test_page_size_above_its_range_is_clamped_not_refused(client, servicer, given, sent):
    response = client.get(f"/api/things/?page_size={given}")

    assert response.status_code == 200
    assert servicer.last.page_size == sent  # the service clamps it to its own maximum


# --- bodies over the limit, through a real HTTP server --------------------------------


@pytest.fixture
def server(client) -> Iterator[int]:
    """The same app behind Werkzeug's HTTP server (it de-chunks, as granian and gunicorn do)."""
    running = make_server("127.0.0.1", 0, client.application, threaded=True)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running.server_port
    running.shutdown()


def _post_chunked(port: int, body: bytes, chunk: int) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pieces = (body[start:start + chunk] for start in range(0, len(body), chunk))
    connection.request("POST", "/api/things/5/rename/", body=pieces, encode_chunked=True,
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    answer = (response.status, response.getheader("Content-Type"))
    connection.close()
    return answer


def _padded(length: int) -> bytes:
    body = b'{"name": "n"}'
    return body + b" " * (length - len(body))


@pytest.mark.parametrize("chunk", [LIMIT + 1, 4096, 777])
def test_a_chunked_body_over_the_limit_is_413(server, chunk):
    assert _post_chunked(server, _padded(LIMIT + 1), chunk) == (413, PROBLEM)  # was 200: cut


def test_a_chunked_body_at_the_limit_is_read_whole(server, servicer):
    assert _post_chunked(server, _padded(LIMIT), 5000)[0] == 200
    assert servicer.last.name == "n"


_LATIN_1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_HEADER_VALUES = st.text(_LATIN_1, max_size=40)  # what HTTP/1.1 can carry in a field value


@_EXAMPLES
@given(if_match=_HEADER_VALUES, key=_HEADER_VALUES)
def test_any_header_value_is_answered_or_refused(client, if_match, key):
    patched = client.patch("/api/things/5/", json={"name": "n"}, headers={"If-Match": if_match})
    created = client.post("/api/things/", json={"name": "n"}, headers={"Idempotency-Key": key})

    _assert_handled(patched, 200, 400, 412)
    _assert_handled(created, 201, 400, 429)  # CreateThing is rate-limited (3/minute)
