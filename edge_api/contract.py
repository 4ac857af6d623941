"""The REST surface described by the proto contracts: one Route per google.api.http binding.

Everything the transcoder and the OpenAPI document need is decided here, once: the
Flask rules of a path template, which request field each path variable, header, body
and query parameter fills, the backend that serves the method, and the comments that
document it (from the descriptor set built with --include_source_info).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from common.options import is_public
from edge_api import options, preconditions
from edge_api.json_codec import is_map, is_well_known

# The services exposed by default; importing their modules registers them in the pool.
DEFAULT_PROTO_MODULES = (
    "taskmgr.user.v1.user_service_pb2",
    "taskmgr.task.v1.task_service_pb2",
    "taskmgr.task.v1.project_service_pb2",
    "taskmgr.task.v1.collaboration_service_pb2",
    "taskmgr.notify.v1.notify_service_pb2",
)
DEFAULT_DESCRIPTOR_SET = Path(__file__).resolve().parents[1] / "gen" / "descriptors.pb"
_PACKAGE = re.compile(r"taskmgr\.(?P<backend>[a-z0-9_]+)\.v\d+")
_VARIABLE = re.compile(r"\{(?P<path>[a-z0-9_.]+)(?:=(?P<pattern>[^}]*))?\}")


@dataclass(frozen=True)
class PathVariable:
    rule_name: str  # the Flask rule variable: dots are not allowed there
    path: str  # dotted request field path, e.g. "task.id"
    field: FieldDescriptor  # the leaf field


@dataclass(frozen=True)
class Route:
    service: ServiceDescriptor
    method: MethodDescriptor
    verb: str
    template: str
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    path_variables: tuple[PathVariable, ...]
    header_fields: dict[str, FieldDescriptor]  # header name -> top-level request field
    query_fields: dict[str, FieldDescriptor]  # dotted path -> leaf field
    backend: str  # "user" for taskmgr.user.v1: the service's address or channel key
    request_class: type[Message] = field(repr=False)
    response_class: type[Message] = field(repr=False)

    # Each is read on every request and costs a descriptor walk or an f-string: computed
    # once per route (cached_property writes the instance's __dict__, frozen or not).
    @cached_property
    def endpoint(self) -> str:
        return f"{self.method.full_name}:{self.verb}:{self.template}"

    @cached_property
    def grpc_path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @cached_property
    def flask_rules(self) -> tuple[str, str]:
        """The rule with and without the trailing slash: the contract accepts both."""
        rule = _VARIABLE.sub(_flask_variable, self.template).rstrip("/")
        return rule + "/", rule

    @cached_property
    def public(self) -> bool:
        return is_public(self.method)

    @cached_property
    def rate_limit(self) -> str:
        return options.rate_limit(self.method)

    @cached_property
    def returns_empty(self) -> bool:
        return self.method.output_type.full_name == "google.protobuf.Empty"

    @cached_property
    def success_status(self) -> int:
        return options.success_status(self.method) or (204 if self.returns_empty else 200)


def _flask_variable(match: re.Match[str]) -> str:
    converter = "path:" if match["pattern"] == "**" else ""
    return f"<{converter}{match['path'].replace('.', '__')}>"


@dataclass
class Contract:
    """The proto files whose annotated services the edge exposes, and their comments."""

    files: Sequence[FileDescriptor]
    comments: dict[str, str]

    @classmethod
    def default(cls, descriptor_set: Path = DEFAULT_DESCRIPTOR_SET) -> Contract:
        files = [importlib.import_module(name).DESCRIPTOR for name in DEFAULT_PROTO_MODULES]
        return cls(files, load_comments(descriptor_set))

    def routes(self) -> list[Route]:
        return [route for file in self.files for route in _file_routes(file)]


def _file_routes(file: FileDescriptor) -> Iterator[Route]:
    match = _PACKAGE.fullmatch(file.package)
    for service in file.services_by_name.values():
        for method in service.methods:
            rule = options.http_rule(method)
            if rule is None:
                continue  # internal RPC: not on the REST surface
            if match is None:
                raise ValueError(f"{method.full_name}: package is not taskmgr.<service>.vN")
            for binding in (rule, *rule.additional_bindings):
                yield _route(service, method, binding, match["backend"])


def _route(service: ServiceDescriptor, method: MethodDescriptor, rule, backend: str) -> Route:
    verb = rule.WhichOneof("pattern")
    if verb == "custom" or rule.response_body or ":" in getattr(rule, verb).rsplit("/", 1)[-1]:
        raise ValueError(f"{method.full_name}: custom verbs and response_body are not supported")
    template = getattr(rule, verb)
    request = method.input_type
    variables = tuple(_path_variable(request, m) for m in _VARIABLE.finditer(template))
    headers = {options.http_header(f): f for f in request.fields if options.http_header(f)}
    for header, bound_field in headers.items():
        preconditions.check_binding(method.full_name, header, bound_field)
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise ValueError(f"{method.full_name}: body field {rule.body!r} does not exist")
    bound = {v.path for v in variables} | {f.name for f in headers.values()} | {rule.body}
    query = {} if rule.body == "*" else dict(_leaf_fields(request, "", bound, set()))
    return Route(
        service=service,
        method=method,
        verb=verb.upper(),
        template=template,
        body=rule.body,
        path_variables=variables,
        header_fields=headers,
        query_fields=query,
        backend=backend,
        request_class=message_factory.GetMessageClass(request),
        response_class=message_factory.GetMessageClass(method.output_type),
    )


def _path_variable(request: Descriptor, match: re.Match[str]) -> PathVariable:
    if match["pattern"] not in (None, "*", "**"):
        raise ValueError(f"{request.full_name}: path pattern {match[0]} is not supported")
    message, leaf = request, None
    for name in match["path"].split("."):
        if message is None or name not in message.fields_by_name:
            raise ValueError(f"{request.full_name}: no field {match['path']}")
        leaf = message.fields_by_name[name]
        message = leaf.message_type
    if leaf.message_type is not None or leaf.is_repeated:
        raise ValueError(f"{request.full_name}: path variable {match['path']} is not a scalar")
    return PathVariable(match["path"].replace(".", "__"), match["path"], leaf)


def _leaf_fields(
    message: Descriptor, prefix: str, bound: set[str], seen: set[str]
) -> Iterator[tuple[str, FieldDescriptor]]:
    """Fields a query parameter can fill: scalars, enums, repeated scalars and well-known
    types (a Timestamp is one RFC 3339 string), through nested messages by dotted name."""
    seen = seen | {message.full_name}  # recursive messages stop at the first repeat
    for candidate in message.fields:
        path = prefix + candidate.name
        if path in bound or is_map(candidate):
            continue
        nested = candidate.message_type
        if nested is None or is_well_known(nested):
            yield path, candidate
        elif not candidate.is_repeated and nested.full_name not in seen:
            yield from _leaf_fields(nested, path + ".", bound, seen)


def load_comments(descriptor_set: Path) -> dict[str, str]:
    """Leading comments by full name (messages, fields, enums, values, services, methods)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    return dict(_comments(files))


def _comments(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> Iterator[tuple[str, str]]:
    for file in files:
        by_path = {
            tuple(location.path): location.leading_comments.strip()
            for location in file.source_code_info.location
            if location.leading_comments.strip()
        }
        for path, name in _named_paths(file):
            if path in by_path:
                yield name, _unwrap(by_path[path])


def _named_paths(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple, str]]:
    # Field numbers of FileDescriptorProto and friends, as SourceCodeInfo paths use them.
    def messages(protos, path: tuple, scope: str) -> Iterator[tuple[tuple, str]]:
        for i, message in enumerate(protos):
            name, here = f"{scope}.{message.name}", (*path, i)
            yield here, name
            for j, message_field in enumerate(message.field):
                yield (*here, 2, j), f"{name}.{message_field.name}"
            yield from messages(message.nested_type, (*here, 3), name)
            yield from enums(message.enum_type, (*here, 4), name)

    def enums(protos, path: tuple, scope: str) -> Iterator[tuple[tuple, str]]:
        for i, enum in enumerate(protos):
            yield (*path, i), f"{scope}.{enum.name}"
            for j, value in enumerate(enum.value):
                yield (*path, i, 2, j), f"{scope}.{enum.name}.{value.name}"

    package = file.package
    yield from messages(file.message_type, (4,), package)
    yield from enums(file.enum_type, (5,), package)
    for i, service in enumerate(file.service):
        yield (6, i), f"{package}.{service.name}"
        for j, method in enumerate(service.method):
            yield (6, i, 2, j), f"{package}.{service.name}.{method.name}"


def _unwrap(comment: str) -> str:
    """Joins the hard-wrapped lines of a proto comment into paragraphs."""
    paragraphs = re.split(r"\n\s*\n", comment)
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)
