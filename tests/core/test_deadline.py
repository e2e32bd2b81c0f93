"""deadline: cancel, then stop waiting after a grace period, whatever the work does."""

from __future__ import annotations

import asyncio
import time

import pytest

from conversation_engine.core._deadline import bounded, cancel_and_wait, within


async def stubborn(release: asyncio.Event) -> str:
    """Work that ignores every cancellation until released."""
    while not release.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            continue
    return "released"


async def test_within_returns_the_result_in_time() -> None:
    assert await within(asyncio.sleep(0, result=7), 1) == 7


async def test_within_cancels_cooperative_work_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(30), 0.1)
    assert time.monotonic() - started < 1


async def test_work_that_ignores_cancellation_is_abandoned_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await bounded(stubborn(release), 0.4, what="stubborn work")
        assert time.monotonic() - started < 1.5
        assert "did not stop within 0.4 s; abandoned" in caplog.text
    finally:
        release.set()
        await asyncio.sleep(0.05)


async def test_on_stuck_gets_a_chance_to_unblock_the_work() -> None:
    gate = asyncio.Event()

    async def waits_for_gate() -> None:
        while True:
            try:
                await gate.wait()
                return
            except asyncio.CancelledError:
                continue  # only the gate ends it

    task = asyncio.ensure_future(waits_for_gate())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task, 1.0, on_stuck=gate.set) is True
    assert task.done()


async def test_errors_of_the_work_propagate() -> None:
    async def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await within(boom(), 1)
