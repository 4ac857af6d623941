"""The cyclic garbage collector and what a server builds once.

A server (each gRPC service, each edge worker) builds at start what it keeps for its
whole life: modules, protobuf descriptors, SQLAlchemy's tables and compiled statements,
gRPC and Flask machinery, caches. CPython's collector scans every tracked object in the
generations it collects, so each full (generation 2) collection walked all of that
again: 50-75 ms of CPU with the GIL held, several times a minute under load
(gc.callbacks timed in task_svc, user_svc, notify_svc and the edge under
bench/perf_vs_floor.py), a pause every request in flight waits out. `gc.freeze()` moves
everything alive at that moment to a permanent generation the collector ignores (Python
docs, gc.freeze; the use Instagram described for forked servers). What is made later is
collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Call once the server is built, before it serves: what exists now is never
    scanned again (and, in a process forked later, never copied by the collector)."""
    gc.collect()  # leave the start's garbage out of the permanent generation
    gc.freeze()
