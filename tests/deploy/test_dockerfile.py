"""The Dockerfile, checked without a Docker engine: it installs exactly the pinned
dependencies, generates the stubs as the Makefile does, ships every package and no
dev tool, and runs as a non-root user."""

from __future__ import annotations

import re
import shlex

from tests.deploy.manifests import PACKAGES, PYPROJECT, REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$", re.M)
LOCK = {
    name.lower().replace("_", "-"): version
    for name, version in LOCK_PIN.findall((REPO / "requirements.lock").read_text())
}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions, by stage name."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for instruction, args in instructions(DOCKERFILE):
        if instruction == "FROM":
            current = []
            result[args.split()[-1]] = current
        current.append((instruction, args))
    return result


def protoc_options(command: str) -> set[str]:
    return {word for word in shlex.split(command) if word.startswith("--")}


def test_every_pip_install_is_constrained_by_the_lock_and_every_pin_is_in_it() -> None:
    installs = [args for _, args in instructions(DOCKERFILE) if "pip install" in args]
    assert installs
    for args in installs:
        for command in args.split("&&"):
            if "pip install" in command:
                assert "-c requirements.lock" in command, command
    # The lock must pin what pyproject.toml pins, at the same version, or -c fixes nothing.
    project = PYPROJECT["project"]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        name, version = requirement.split("==")
        name = re.sub(r"\[.*\]", "", name).lower().replace("_", "-")
        assert LOCK.get(name) == version, f"{requirement} is not pinned the same in requirements.lock"


def test_runtime_dependencies_are_read_from_pyproject() -> None:
    builder = " ".join(args for _, args in stages()["builder"])
    assert 'tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]' in builder


def test_stubs_are_generated_with_the_makefiles_protoc_command() -> None:
    makefile = (REPO / "Makefile").read_text()
    make_recipe = re.search(r"^\$\(GENERATED\):.*\n((?:\t.*\n)+)", makefile, re.M)
    assert make_recipe, "the Makefile's gen/descriptors.pb target"
    make_protoc = re.sub(r"\\\n", " ", make_recipe.group(1)).split("grpc_tools.protoc", 1)[1]
    [docker_protoc] = [args for _, args in stages()["builder"] if "grpc_tools.protoc" in args]
    docker_protoc = docker_protoc.split("grpc_tools.protoc", 1)[1]
    expected = {option.replace("$@", "gen/descriptors.pb") for option in protoc_options(make_protoc)}
    assert protoc_options(docker_protoc.replace("$(find protos -name '*.proto')", "")) == expected


def test_runtime_image_ships_every_package_and_the_stubs_but_no_dev_tools() -> None:
    runtime = stages()["runtime"]
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE, re.M)
    copies = [args for instruction, args in runtime if instruction == "COPY"]
    for package in PACKAGES:
        assert f"{package} /app/{package}" in copies, f"{package} is not copied into the image"
    assert "--from=builder /src/gen /app/gen" in copies
    assert "--from=builder /opt/venv /opt/venv" in copies
    text = " ".join(args for _, args in runtime)
    for dev_tool in ("/opt/tools", *PYPROJECT["project"]["optional-dependencies"]["dev"]):
        assert dev_tool.split("==")[0] not in text, f"{dev_tool} reaches the runtime image"
    assert not any(instruction == "RUN" and "pip" in args for instruction, args in runtime)


def test_runtime_runs_as_a_non_root_user() -> None:
    runtime = stages()["runtime"]
    users = [args for instruction, args in runtime if instruction == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    assert f"useradd --system --uid {user}" in " ".join(args for _, args in runtime)
    # USER comes after the last RUN, so nothing at run time is done as root.
    last_run = max(i for i, (instruction, _) in enumerate(runtime) if instruction == "RUN")
    assert runtime.index(("USER", users[-1])) > last_run


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = {
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "gen", "var", ".env", "*.pem"} <= ignored
    needed = {"pyproject.toml", "requirements.lock", "protos", *PACKAGES}
    assert not needed & ignored, "the build needs these"
