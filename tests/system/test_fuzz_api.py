"""schemathesis against /swagger.json of the product running as real processes.

Every operation of the document gets generated requests (positive data from its schemas,
sent with a verified user's bearer token): no answer may be a 5xx, and every answer must
be documented (status), of a documented content type, and match its documented schema.
Generation is derandomized, so a run is reproducible, and bounded per operation. The
public operations, rate-limited per IP, get fewer cases: past their limit they answer 429, which
they document, so more cases would test nothing new.

Every failure of every operation is collected and reported at once, each with a curl
command that reproduces it.

Two modes, each on a stack of its own: positive (data that fits the document) and
negative (data that breaks it: wrong types, out-of-range numbers, strings past their
length, missing required fields, unknown members). A negative case must be refused with a
documented 4xx problem: no 5xx, and no success for data the document says is invalid
(negative_data_rejection).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

from tests.support.processes import ProcessStack
from tests.system.accounts import register_and_login

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

CASES_PER_OPERATION = 90
CASES_PER_RATE_LIMITED_OPERATION = 25
# Negative mode measured 2,270 cases on 31 operations; only GET /.well-known/jwks.json
# (public, no parameters) had nothing to break.
MINIMUM_TOTAL_CASES = {GenerationMode.POSITIVE: 1000, GenerationMode.NEGATIVE: 1000}
MAX_OPERATIONS_WITHOUT_CASES = {GenerationMode.POSITIVE: 0, GenerationMode.NEGATIVE: 3}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
# A request the document says is invalid is refused with one of these (never a 5xx,
# which not_a_server_error reports): schemathesis's list, plus the edge's own 412, 413, 414
# and 431 for a precondition, a body, a URI or headers past their limits.
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "414", "415", "422",
                      "428", "429", "431"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTION_STATUSES}}}
)
CHECKS_BY_MODE = {
    GenerationMode.POSITIVE: CHECKS,
    GenerationMode.NEGATIVE: [*CHECKS, schemathesis.checks.negative_data_rejection],
}


@pytest.fixture(params=list(CHECKS_BY_MODE), ids=str)
def mode(request) -> GenerationMode:
    return request.param


@pytest.fixture
def fuzzed_stack(tmp_path_factory, mode: GenerationMode) -> Iterator[ProcessStack]:
    """A stack of its own per mode: the fuzzing uses up the per-IP limits of the public operations."""
    stack = ProcessStack(tmp_path_factory.mktemp(f"fuzzed-stack-{mode}")).start()
    yield stack
    stack.stop()


def document_operations(document: dict) -> list[tuple[str, str]]:
    return [(method, path) for path, item in document["paths"].items() for method in item]


def _public(document: dict, method: str, path: str) -> bool:
    """Public operations (no token) are the ones with per-IP rate limits at the edge."""
    return document["paths"][path][method.lower()].get("security") == []


def _fuzz(operation, examples: int, send, mode: GenerationMode) -> bool:
    """Runs `send(case)` on `examples` generated cases of `operation`, reproducibly; False
    when the mode has no case for it (nothing in a request without parameters or body can
    break its document)."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected by `send`, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        send(case)

    try:
        run()
    except Unsatisfiable:
        return False
    return True


def _auth(case, account) -> dict[str, str]:
    """The account's token, unless the case's headers are the negated part: a missing
    Authorization header may be the very thing under test, and adding it would make the
    case valid."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return {} if headers is not None and headers.mode.is_negative else account.headers


@pytest.mark.timeout(900)  # a few thousand requests per mode, on a machine others share
def test_generated_requests_get_documented_answers(fuzzed_stack: ProcessStack, mode: GenerationMode):
    base_url = fuzzed_stack.edge_url
    account = register_and_login(fuzzed_stack, "fuzzer")
    document = requests.get(f"{base_url}/swagger.json", timeout=10).json()
    schema = schemathesis.openapi.from_url(f"{base_url}/swagger.json", config=CONFIG)
    session = requests.Session()
    sent: dict[str, int] = {}
    failures: dict[str, list[str]] = {}
    statuses: dict[str, set[int]] = {}  # of the cases sent with the account's token
    authenticated: set[str] = set()
    no_cases: list[str] = []

    def send(case) -> None:
        label = case.operation.label
        sent[label] = sent.get(label, 0) + 1
        headers = _auth(case, account)
        try:
            response = case.call_and_validate(
                base_url=base_url, session=session, headers=headers, checks=CHECKS_BY_MODE[mode]
            )
            if headers:
                statuses.setdefault(label, set()).add(response.status_code)
        except (AssertionError, FailureGroup) as failure:  # one failed check, or several
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
        examples = CASES_PER_RATE_LIMITED_OPERATION if public else CASES_PER_OPERATION
        if not _fuzz(operation, examples, send, mode):
            no_cases.append(operation.label)

    report = "\n\n".join(f"{label}:\n" + "\n".join(found) for label, found in failures.items())
    assert not failures, f"{len(failures)} operations answered against their documentation:\n{report}"
    fuzzed = len(sent) + len(no_cases)
    assert fuzzed == len(document_operations(document)), f"not every operation was fuzzed: {sorted(sent)}"
    assert len(no_cases) <= MAX_OPERATIONS_WITHOUT_CASES[mode], f"no {mode} cases for {no_cases}"
    # Every case of an operation may negate its Authorization header: nothing to judge then.
    refused = sorted(label for label in authenticated & set(statuses) if statuses[label] == {401})
    assert not refused, f"the token was refused: only 401s from {refused}"
    total = sum(sent.values())
    assert total >= MINIMUM_TOTAL_CASES[mode], f"only {total} cases were sent: {sent}"
    print(f"{mode}: {total} cases, {len(sent)} operations; none possible for {no_cases}")
