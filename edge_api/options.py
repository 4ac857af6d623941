"""Reads the HTTP-related options of the contracts: google.api.http, google.api.field_behavior
and our own (taskmgr/api/v1/options.proto). Everything the edge knows about an endpoint
comes from here (and `public` from common.options, which the auth interceptor shares),
so nothing about an endpoint is written twice."""

from __future__ import annotations

from functools import cache

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor

from taskmgr.api.v1 import options_pb2


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    return options.Extensions[annotations_pb2.http]


def success_status(method: MethodDescriptor) -> int | None:
    return method.GetOptions().Extensions[options_pb2.success_status] or None


def rate_limit(method: MethodDescriptor) -> str:
    return method.GetOptions().Extensions[options_pb2.rate_limit]


@cache  # read for every field of every reply (ETag): options are fixed per descriptor
def http_header(field: FieldDescriptor) -> str:
    return field.GetOptions().Extensions[options_pb2.http_header]


def is_credential(field: FieldDescriptor) -> bool:
    """A credential the method checks: a wrong one is UNAUTHENTICATED (401)."""
    return field.GetOptions().Extensions[options_pb2.credential]


def is_output_only(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.OUTPUT_ONLY in behaviors


def is_required(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors
