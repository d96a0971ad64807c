"""start_eagerly runs a coroutine now, and what remains after it suspends in a task, with the same outcome."""

from __future__ import annotations

import asyncio

import pytest

from sfu.eager import start_eagerly


async def test_a_coroutine_that_never_suspends_is_done_on_return() -> None:
    done: list[str] = []

    async def handle() -> None:
        done.append("handled")

    start_eagerly(handle())
    assert done == ["handled"]


async def test_an_exception_before_the_first_suspension_reaches_the_caller() -> None:
    async def fail() -> None:
        raise ValueError("malformed")

    with pytest.raises(ValueError, match="malformed"):
        start_eagerly(fail())


async def test_what_remains_after_a_suspension_runs_later_and_sees_results_and_errors() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    steps: list[object] = []

    async def handle() -> None:
        steps.append("started")
        await asyncio.sleep(0)
        steps.append(await first)
        try:
            await second
        except KeyError as exc:
            steps.append(f"error {exc}")

    start_eagerly(handle())
    assert steps == ["started"]
    await asyncio.sleep(0.01)
    first.set_result("result")
    second.set_exception(KeyError("late"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert steps == ["started", "result", "error 'late'"]


async def test_cancelling_what_remains_cancels_the_coroutine_where_it_waits() -> None:
    never = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def handle() -> None:
        try:
            await never
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    before = asyncio.all_tasks()
    start_eagerly(handle())
    [rest] = asyncio.all_tasks() - before
    await asyncio.sleep(0)
    rest.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rest
    assert steps == ["cancelled"]
