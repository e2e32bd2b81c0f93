"""When requests reach the simulated model: for checking a rate limit at the wire.

`ArrivalsEndpoint` is the simulated model that also notes the time and status of each chat
completion request it answers, whichever process sent it; `most_in_a_window` is the largest
number of those that fall in any window of a given length (a sliding window, not a grid).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Sequence

from conversation_engine.testing.simulated_llm.config import SimulationConfig
from conversation_engine.testing.simulated_llm.endpoint import Outcome, SimulatedEndpoint


class ArrivalsEndpoint(SimulatedEndpoint):
    """The simulated model, noting when each chat completion request arrives (monotonic
    seconds) and the status it was answered with."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        super().__init__(config)
        self.arrivals: list[float] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()  # the server answers from several threads

    def handle(self, method: str, path: str, body: bytes) -> Outcome:
        outcome = super().handle(method, path, body)
        if path.endswith("/chat/completions"):
            with self._lock:
                self.arrivals.append(time.monotonic())
                self.statuses.append(outcome.status)
        return outcome


def most_in_a_window(arrivals: Sequence[float], seconds: float) -> int:
    """The most arrivals in any half-open window `[t, t + seconds)` that starts at one."""
    times = sorted(arrivals)
    return max(
        (bisect_left(times, start + seconds) - i for i, start in enumerate(times)), default=0
    )
