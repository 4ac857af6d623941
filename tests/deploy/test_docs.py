"""The documentation a user gets with the repository stands on its own: nothing points
outside it, every link and file path it names exists, and its numbers are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.settings import Settings
from tests.deploy.manifests import REPO

DOCS = sorted({REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("*/README.md")})
_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")
# `path/like/this` or `file.ext` in backticks, naming something in the repository.
_SKIP = {".git", ".venv", "gen", "var", "node_modules", ".pytest_cache"}
FILE_NAMES = {
    path.name
    for top in REPO.iterdir()
    if top.name not in _SKIP
    for path in ([top] if top.is_file() else top.rglob("*"))
}
_CODE_PATH = re.compile(r"`((?:[a-z_.][\w.-]*/)+[\w.-]*|[\w-]+\.(?:md|yaml|yml|py|toml|example|lock))`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_nothing_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../" not in text, f"{doc.name} points outside the repository"
    assert "shared/reference" not in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_link_and_named_path_exists(doc: Path) -> None:
    text = doc.read_text()
    for target in _LINK.findall(text):
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"
    for name in _CODE_PATH.findall(text):
        candidates = [doc.parent / name, REPO / name, REPO / "protos" / name]  # proto imports are relative
        if "/" not in name.rstrip("/") and name.rstrip("/") in FILE_NAMES:
            continue  # a file every service has (`server.py`) or one named by its folder's doc
        if not any(path.exists() for path in candidates):
            # Generated or per-machine paths a reader creates (gen/, var/, .venv/, .env).
            assert name.split("/")[0] in {"gen", "var", ".venv", ".env", "protos"} or "<" in name, (
                f"{doc.name} names `{name}`, which is not in the repository"
            )


def test_the_readme_points_to_the_contract_in_the_repository() -> None:
    assert "(docs/rest-contract.md)" in (REPO / "README.md").read_text()


def test_the_contract_s_numbers_are_the_code_s() -> None:
    contract = (REPO / "docs" / "rest-contract.md").read_text()
    defaults = Settings()
    assert f"{defaults.edge_metrics_host}:{defaults.edge_metrics_port}" in contract
    assert f"over {defaults.max_body_bytes // 1024} KiB" in contract
    assert "GET /metrics (Prometheus)" not in contract, "metrics are not on the public port"
