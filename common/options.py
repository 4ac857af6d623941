"""Reads our proto options (taskmgr.api.v1) from the descriptors of imported stubs."""

from __future__ import annotations

from functools import lru_cache

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

from taskmgr.api.v1 import options_pb2


@lru_cache(maxsize=1024)
def find_method(grpc_method: str) -> MethodDescriptor | None:
    """The descriptor of "/taskmgr.user.v1.UserService/Login", or None if unknown."""
    service, _, method = grpc_method.lstrip("/").rpartition("/")
    try:
        return descriptor_pool.Default().FindServiceByName(service).methods_by_name.get(method)
    except KeyError:
        return None


def is_public(method: MethodDescriptor) -> bool:
    return method.GetOptions().Extensions[options_pb2.public]


def rate_limit_option(method: MethodDescriptor) -> str:
    """The method's per-client limit in the contract ("10/minute;100/hour"), or ""."""
    return method.GetOptions().Extensions[options_pb2.rate_limit]
