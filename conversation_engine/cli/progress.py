"""The progress bar of `run`, `batch` and `compare`, and its time-left estimate.

Imported by a command when it starts running conversations (rich's progress module is not
cheap to import), never by `--help`.
"""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from conversation_engine.cli._terminal import console


class ConversationClock:
    """When the conversations left will be done: remaining × mean duration / concurrency.

    Fed the durations of finished conversations (`update`), per task of a progress bar. The
    tasks share the `concurrency` slots (compare runs both sides in one schedule, each pair's
    two runs back to back), so the time left is the work left of every task over the slots,
    each task's runs weighed by its own mean duration (by the mean of all until it has one).
    Slots: at most as many as the largest task has runs left.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._left: dict[object, int] = {}
        self._seconds: dict[object, list[float]] = {}

    def update(self, key: object, *, left: int, seconds: Any = None) -> None:
        """`key` has `left` runs to go; `seconds`: the duration of one that just finished."""
        self._left[key] = max(0, left)
        durations = self._seconds.setdefault(key, [])
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            durations.append(float(seconds))

    def seconds_left(self) -> float | None:
        """The estimate, 0 when nothing is left, None until a conversation has finished."""
        if not self._left:
            return None
        left = {key: count for key, count in self._left.items() if count > 0}
        if not left:
            return 0.0
        every = [seconds for durations in self._seconds.values() for seconds in durations]
        if not every:
            return None
        overall = sum(every) / len(every)
        work = 0.0
        for key, count in left.items():
            durations = self._seconds.get(key) or []
            work += count * (sum(durations) / len(durations) if durations else overall)
        return work / min(self.concurrency, max(left.values()))


class EtaColumn(ProgressColumn):
    """`ETA 0:00:45` from a `ConversationClock` (`-:--:--` until one conversation finished).

    Not rich's `TimeRemainingColumn`: that divides by the recent rate of completions, which
    with concurrent conversations finishing in bursts said 2 s at 4 of 60 when 45 s were left.
    """

    def __init__(self, clock: ConversationClock) -> None:
        super().__init__()
        self.clock = clock

    def render(self, task: Task) -> Text:
        seconds = 0.0 if task.finished else self.clock.seconds_left()
        if seconds is None:
            return Text("ETA -:--:--", style="progress.remaining")
        minutes, second = divmod(round(seconds), 60)
        hours, minute = divmod(minutes, 60)
        return Text(f"ETA {hours}:{minute:02d}:{second:02d}", style="progress.remaining")


def progress_bar(clock: ConversationClock) -> Progress:
    """A progress bar on `console`: done of total, failed, active, elapsed time and ETA
    (`clock`).

    Each task needs the fields `failed` and `active`.
    """
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("[cyan]{task.fields[active]} active"),
        TimeElapsedColumn(),
        EtaColumn(clock),
        console=console,
    )
