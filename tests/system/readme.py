"""Reads README.md's shell walkthroughs and runs their commands with bash against a process stack.

A command is what a reader would paste: its continuation lines joined, the comment above
it kept as its `note`. The only rewrites are the ones a reader makes on another machine:
the stack's ports for the default ones, and the code from the console for `123456`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import REPO, ProcessStack

README = REPO / "README.md"
EXAMPLE_CODE = "123456"
_DEFAULT_GRPC_PORTS = {"user_svc": 50051, "task_svc": 50052, "notify_svc": 50053}
# curl prints the body on stdout as usual; the status goes to stderr, where it changes nothing.
_BASH_PRELUDE = """set -euo pipefail
curl() { command curl -w '%{stderr}HTTP_STATUS %{http_code}\\n' "$@"; }
"""
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z_]+)=\$\((?P<command>.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    text: str
    note: str

    @property
    def assigns(self) -> str | None:
        match = _ASSIGNMENT.match(self.text)
        return match["name"] if match else None

    @property
    def method(self) -> str:
        match = re.search(r"-X (\w+)", self.text)
        return match[1] if match else "GET"

    @property
    def path(self) -> str:
        """The REST path the command calls, without its query."""
        match = re.search(r"localhost:8000(/[^'\"\s?]*)", self.text)
        assert match, f"not a REST call: {self.text}"
        return match[1]

    @property
    def documented_status(self) -> int | None:
        """An HTTP status the README's comment promises for this step ("1. Register: 201 ...")."""
        match = re.search(r"\b([1-5]\d\d)\b", self.note)
        return int(match[1]) if match else None


@dataclass(frozen=True)
class Outcome:
    stdout: str
    status: int | None


def section(heading: str, markdown: str | None = None) -> str:
    """The text under the `## heading...` line, up to the next `## `."""
    text = README.read_text() if markdown is None else markdown
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {heading}' section"
    return match[1]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[Command]:
    found, note, pending = [], "", ""
    for line in block.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            note = stripped.lstrip("# ") if stripped else note
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        found.append(Command(pending + stripped, note))
        pending = ""
    return found


def for_stack(command: Command, stack: ProcessStack, code: str | None = None) -> str:
    """The command as a reader would type it against `stack` (its ports, the code they received)."""
    text = command.text.replace("localhost:8000", f"127.0.0.1:{stack.ports['edge']}")
    for service, port in _DEFAULT_GRPC_PORTS.items():
        text = text.replace(f"127.0.0.1:{port}", stack.grpc_address(service))
    if code is not None:
        text = text.replace(EXAMPLE_CODE, code)
    return text


def run(text: str, variables: dict[str, str], cwd: Path = REPO) -> Outcome:
    """Runs one command in bash; for `NAME=$(...)` the stdout is NAME's value."""
    assignment = _ASSIGNMENT.match(text)
    script = _BASH_PRELUDE + (f'{text}\nprintf %s "${assignment["name"]}"' if assignment else text)
    result = subprocess.run(  # noqa: S603 - the README's own commands, in bash
        ["/bin/bash", "-c", script], cwd=cwd, env=variables, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"{text}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
    statuses = re.findall(r"^HTTP_STATUS (\d{3})$", result.stderr, re.MULTILINE)
    return Outcome(result.stdout, int(statuses[-1]) if statuses else None)
