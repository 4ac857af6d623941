"""Synchronous code run on an event loop, awaiting coroutines as if it called them.

`await run(fn, *args)` (in a coroutine) runs `fn(*args)` in a greenlet of its own, on
the loop's thread; anywhere below it, `await_only(awaitable)` suspends that greenlet,
hands the awaitable to `run`, which awaits it on the loop (other requests run
meanwhile), and resumes the greenlet with its result, or raises its exception there.
This is how the edge runs its synchronous Flask app on granian's event loop while the
gRPC call is in flight (edge_api.rsgi_bridge, edge_api.backends): no thread per
request, no hand-off between threads.

The pattern is SQLAlchemy's asyncio layer's (`greenlet_spawn` / `await_only` in
sqlalchemy.util._concurrency). It is written here rather than imported: SQLAlchemy
documents those functions nowhere as its API (they live in a private module, and 2.1
made greenlet optional for it), and the edge needs only these few lines.

Each greenlet has a contextvars context of its own, empty at the start (greenlet >= 1.0):
context variables set by the code in it (Flask's request and app contexts,
common.context's request id) belong to that one call, whatever else runs on the loop
meanwhile. The awaitables themselves run in the context of the coroutine that called
`run`.

Code run this way must not block for long without `await_only`: it holds the loop, and
with it every other request of the process.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

T = TypeVar("T")


class _Runner(greenlet):
    """The greenlet `run` starts: `await_only` recognises it (and only it)."""

    __slots__ = ("driver",)

    def __init__(self, fn: Callable[..., Any], driver: greenlet) -> None:
        super().__init__(fn, driver)
        self.driver = driver  # the greenlet the loop runs on, where `run` awaits


def in_greenlet() -> bool:
    """True when called (at any depth) from a function `run` runs: `await_only` may be used."""
    return isinstance(getcurrent(), _Runner)


def await_only(awaitable: Awaitable[T]) -> T:
    """The result of `awaitable`, awaited on the loop while this greenlet waits; its
    exception is raised here. RuntimeError outside `run` (the awaitable is then closed
    if it is a coroutine, so nothing warns that it was never awaited)."""
    current = getcurrent()
    if not isinstance(current, _Runner):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise RuntimeError("await_only() called outside edge_api.greenlets.run()")
    return current.driver.switch(awaitable)


def off_the_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, which blocks on I/O (a network store), run on a thread of the loop's
    default executor while this greenlet waits, when called from `run`; elsewhere simply
    called. Returns what it returns, raises what it raises."""
    if not in_greenlet():
        return fn(*args)
    return await_only(asyncio.to_thread(fn, *args))


async def run(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, run in a new greenlet on this loop's thread; each `await_only` in it is
    awaited here. Returns what `fn` returns, raises what it raises."""
    child = _Runner(fn, getcurrent())
    # Each switch into the child returns when it calls await_only (the awaitable) or when
    # it ends (its return value; its exception is raised by the switch itself).
    result = child.switch(*args)
    while not child.dead:
        try:
            value = await result
        except BaseException:  # noqa: BLE001 (CancelledError too: the child must see it)
            result = child.throw(*sys.exc_info())
        else:
            result = child.switch(value)
    return result
