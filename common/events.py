"""The event envelope (CloudEvents attributes carried as protobuf)."""

from __future__ import annotations

import uuid

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from common.context import request_id_var
from taskmgr.events.v1 import events_pb2

TYPE_PREFIX = "taskmgr."


def build_event(*, source: str, event_type: str, subject: str, payload: Message) -> events_pb2.Event:
    """An envelope around `payload`, correlated with the current request."""
    data = any_pb2.Any()
    data.Pack(payload)
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return events_pb2.Event(
        id=str(uuid.uuid4()),
        source=source,
        type=event_type,
        subject=subject,
        time=now,
        correlation_id=request_id_var.get(),
        data=data,
    )


def routing_key(event_type: str) -> str:
    """taskmgr.task.assigned -> task.assigned"""
    return event_type.removeprefix(TYPE_PREFIX)
