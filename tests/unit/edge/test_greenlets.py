"""edge_api.greenlets: sync code on the loop, awaiting as if it called."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from edge_api import greenlets

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


async def double(value: int) -> int:
    await asyncio.sleep(0)
    return 2 * value


def test_run_returns_what_the_function_returns_through_its_awaits() -> None:
    def work(a: int, b: int) -> int:
        assert greenlets.in_greenlet()
        return greenlets.await_only(double(a)) + greenlets.await_only(double(b))

    assert asyncio.run(greenlets.run(work, 1, 2)) == 6


def test_a_function_that_never_awaits() -> None:
    assert asyncio.run(greenlets.run(lambda: "no await")) == "no await"


def test_an_exception_of_the_awaited_call_is_raised_where_it_was_awaited() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise KeyError("from the call")

    def work() -> str:
        try:
            greenlets.await_only(fails())
        except KeyError as error:
            # The greenlet goes on after it: one more await, then its answer.
            return f"caught {error.args[0]}, then {greenlets.await_only(double(4))}"
        return "not raised"

    assert asyncio.run(greenlets.run(work)) == "caught from the call, then 8"


def test_an_exception_of_the_function_is_raised_by_run() -> None:
    def work() -> None:
        greenlets.await_only(asyncio.sleep(0))
        raise ValueError("from the function")

    with pytest.raises(ValueError, match="from the function"):
        asyncio.run(greenlets.run(work))


def test_an_awaited_call_cancelled_is_raised_in_the_function_and_out_of_run() -> None:
    seen: list[str] = []

    def work() -> None:
        try:
            greenlets.await_only(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.create_task(greenlets.run(work))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == ["cancelled"]


def test_await_only_outside_run_is_an_error_and_closes_the_coroutine() -> None:
    coroutine = double(1)
    assert not greenlets.in_greenlet()
    with pytest.raises(RuntimeError, match="outside"):
        greenlets.await_only(coroutine)
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning


def test_concurrent_runs_interleave_and_keep_their_own_context_variables() -> None:
    order: list[str] = []

    def work(name: str, pause: float) -> tuple[str, str]:
        where.set(name)
        order.append(f"{name} start")
        greenlets.await_only(asyncio.sleep(pause))
        order.append(f"{name} end")
        return name, where.get()

    async def main() -> list[tuple[str, str]]:
        where.set("loop")
        answers = await asyncio.gather(greenlets.run(work, "slow", 0.05), greenlets.run(work, "fast", 0.0))
        assert where.get() == "loop"  # untouched by the greenlets
        return answers

    assert asyncio.run(main()) == [("slow", "slow"), ("fast", "fast")]
    assert order == ["slow start", "fast start", "fast end", "slow end"]


def test_blocking_io_off_the_loop_runs_on_another_thread_while_the_loop_goes_on() -> None:
    import threading
    import time

    loop_thread, ticks = threading.get_ident(), []

    def blocking(seconds: float) -> tuple[int, int]:
        time.sleep(seconds)  # a round trip to a network store
        return threading.get_ident(), len(ticks)

    async def ticking() -> None:
        for _ in range(5):
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def both() -> tuple[int, int]:
        answer, _ = await asyncio.gather(greenlets.run(greenlets.off_the_loop, blocking, 0.2), ticking())
        return answer

    thread, ticked_meanwhile = asyncio.run(both())
    assert thread != loop_thread
    assert ticked_meanwhile == 5  # the loop ran the other task while the call blocked
    assert greenlets.off_the_loop(blocking, 0)[0] == loop_thread  # outside run: simply called
