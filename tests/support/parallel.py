"""Firing calls at once, for race tests: threads released together by a barrier, each
call's result or gRPC status code collected in order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc


def at_once(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Runs every call in its own thread, all released together; returns, in order, each
    call's result or, for a failed gRPC call, the RpcError (anything else is raised)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return call()
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def succeeded(outcomes: Sequence[Any]) -> list[Any]:
    return [outcome for outcome in outcomes if not isinstance(outcome, grpc.RpcError)]


def failed(outcomes: Sequence[Any]) -> list[grpc.RpcError]:
    return [outcome for outcome in outcomes if isinstance(outcome, grpc.RpcError)]
