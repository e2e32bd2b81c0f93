"""Hard bounds on waiting: cancel, then stop waiting after a short grace period.

Cancelling a task only asks it to stop. Code that swallows the cancellation, or that waits
in its cleanup for something that never happens (AutoGen's runtime waiting to go idle behind
a tool task that died), keeps its caller waiting forever. Every bounded wait in this package
(a conversation's `timeout_sec`, an evaluation, a Swarm run) therefore cancels the work and
then waits at most `CANCEL_GRACE_SECONDS` for it to finish; work that is still running then
is abandoned (and logged), never awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

#: How long cancelled work may take to wind down before it is abandoned.
CANCEL_GRACE_SECONDS = 2.0

T = TypeVar("T")


async def cancel_and_wait(
    task: asyncio.Future[Any],
    grace: float = CANCEL_GRACE_SECONDS,
    *,
    what: str = "task",
    on_stuck: Callable[[], None] | None = None,
) -> bool:
    """Cancel `task` and wait at most `grace` seconds for it to end; True if it ended.

    If the first cancellation does not end it within half the grace period, `on_stuck` (if
    given) gets a chance to cancel what the task is waiting for, and the task is cancelled
    once more. A task still running after `grace` is left behind with a warning.
    """
    if task.done():
        return True
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace / 2)
    if not done:
        if on_stuck is not None:
            on_stuck()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace / 2)
    if not done:
        logger.warning("A cancelled %s did not stop within %g s; abandoned.", what, grace)
        # Nobody awaits it any more; keep asyncio from reporting its eventual error.
        task.add_done_callback(_consume_result)
        return False
    _consume_result(task)
    return True


def _consume_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def bounded(
    work: Awaitable[T],
    grace: float = CANCEL_GRACE_SECONDS,
    *,
    what: str = "task",
    on_stuck: Callable[[], None] | None = None,
) -> T:
    """Await `work`; when the caller is cancelled, cancel it and wait at most `grace` seconds.

    Use it inside `asyncio.timeout(...)`: the deadline's cancellation reaches the caller at
    once, the work is cancelled, and the caller's wait for its cleanup is bounded, so the
    deadline holds (plus `grace`) whatever the work does with the cancellation.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await cancel_and_wait(task, grace, what=what, on_stuck=on_stuck)
        raise


async def within(work: Coroutine[Any, Any, T], seconds: float, *, what: str = "task") -> T:
    """`work`'s result, or `TimeoutError` after `seconds` (+ at most the grace period)."""
    async with asyncio.timeout(seconds):
        return await bounded(work, what=what)
