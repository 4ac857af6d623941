"""Per-call context: who is calling and which request this is.

Set by the gRPC interceptor (and the edge) for the duration of one call, read by
logging, event recording and outgoing calls that forward the caller's identity.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.auth import Claims

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
client_ip_var: ContextVar[str] = ContextVar("client_ip", default="")
claims_var: ContextVar[Claims | None] = ContextVar("claims", default=None)
