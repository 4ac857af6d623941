"""schemathesis against /swagger.json of the product running as real processes.

Every operation of the document gets generated requests (positive data from its schemas,
sent with a verified user's bearer token): no answer may be a 5xx, and every answer must
be documented (status), of a documented content type, and match its documented schema.
Generation is derandomized, so a run is reproducible, and bounded per operation. The
public operations, rate-limited per IP, get fewer cases: past their limit they answer 429, which
they document, so more cases would test nothing new.

Every failure of every operation is collected and reported at once, each with a curl
command that reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Err

from tests.support.processes import ProcessStack
from tests.system.accounts import register_and_login

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

CASES_PER_OPERATION = 90
CASES_PER_RATE_LIMITED_OPERATION = 25
MINIMUM_TOTAL_CASES = 1000
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_stack(tmp_path_factory) -> Iterator[ProcessStack]:
    """A stack of its own: the fuzzing uses up the per-IP limits of the public operations."""
    stack = ProcessStack(tmp_path_factory.mktemp("fuzzed-stack")).start()
    yield stack
    stack.stop()


def document_operations(document: dict) -> list[tuple[str, str]]:
    return [(method, path) for path, item in document["paths"].items() for method in item]


def _public(document: dict, method: str, path: str) -> bool:
    """Public operations (no token) are the ones with per-IP rate limits at the edge."""
    return document["paths"][path][method.lower()].get("security") == []


def _fuzz(operation, examples: int, send) -> None:
    """Runs `send(case)` on `examples` generated cases of `operation`, reproducibly."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected by `send`, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:
        send(case)

    run()


def test_generated_requests_get_documented_answers(fuzzed_stack: ProcessStack):
    base_url = fuzzed_stack.edge_url
    account = register_and_login(fuzzed_stack, "fuzzer")
    document = requests.get(f"{base_url}/swagger.json", timeout=10).json()
    schema = schemathesis.openapi.from_url(f"{base_url}/swagger.json")
    session = requests.Session()
    sent: dict[str, int] = {}
    failures: dict[str, list[str]] = {}
    statuses: dict[str, set[int]] = {}
    authenticated: set[str] = set()

    def send(case) -> None:
        label = case.operation.label
        sent[label] = sent.get(label, 0) + 1
        try:
            response = case.call_and_validate(
                base_url=base_url, session=session, headers=account.headers, checks=CHECKS
            )
            statuses.setdefault(label, set()).add(response.status_code)
        except AssertionError as failure:  # schemathesis's check failures are AssertionErrors
            found = failures.setdefault(label, [])
            if len(found) < 3:
                found.append(f"{failure}\n  reproduce: {case.as_curl_command(base_url=base_url)}")

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            error = result.err()
            failures[f"{error.method} {error.path}"] = [f"schemathesis cannot read it: {error}"]
            continue
        operation = result.ok()
        public = _public(document, operation.method, operation.path)
        if not public:
            authenticated.add(operation.label)
        _fuzz(operation, CASES_PER_RATE_LIMITED_OPERATION if public else CASES_PER_OPERATION, send)

    report = "\n\n".join(f"{label}:\n" + "\n".join(found) for label, found in failures.items())
    assert not failures, f"{len(failures)} operations answered against their documentation:\n{report}"
    assert len(sent) == len(document_operations(document)), f"not every operation was fuzzed: {sorted(sent)}"
    refused = sorted(label for label in authenticated if statuses.get(label, {401}) == {401})
    assert not refused, f"the token was refused: only 401s from {refused}"
    assert sum(sent.values()) >= MINIMUM_TOTAL_CASES, f"only {sum(sent.values())} cases were sent: {sent}"
