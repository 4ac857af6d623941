"""An empty entity tag (`""`) in If-Match is legal (RFC 9110 section 8.8.3: *etagc) and
names no version; werkzeug parses it as None, which was a 500 (found by schemathesis)."""

from __future__ import annotations

import pytest

from edge_api.preconditions import fill_version_match
from taskmgr.api.v1.preconditions_pb2 import VersionMatch


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("value", ['""', 'W/""', '"E"\t\t , \t W/"",\t ""', '"", "7"'])
def test_an_empty_entity_tag_names_no_version(header, value):
    condition = VersionMatch()

    fill_version_match(condition, header, value)

    assert not condition.any
    assert list(condition.versions) == ([7] if '"7"' in value else [])
