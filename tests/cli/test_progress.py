"""The progress bar's ETA: remaining × mean duration of finished conversations / concurrency."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from conversation_engine.cli.progress import ConversationClock, EtaColumn


def test_no_estimate_before_a_conversation_finished() -> None:
    clock = ConversationClock(4)
    clock.update("batch", left=60)
    assert clock.seconds_left() is None


def test_remaining_times_mean_duration_over_concurrency() -> None:
    # 4 of 60 done at once after ~3 s each: 56 × 3 s / 4 slots = 42 s (rich's rate said 2 s).
    clock = ConversationClock(4)
    for left, seconds in zip((59, 58, 57, 56), (2.5, 3.0, 3.5, 3.0), strict=True):
        clock.update("batch", left=left, seconds=seconds)
    assert clock.seconds_left() == pytest.approx(56 * 3.0 / 4)


def test_fewer_runs_left_than_slots_use_only_as_many_slots() -> None:
    clock = ConversationClock(4)
    clock.update("batch", left=2, seconds=10.0)
    assert clock.seconds_left() == pytest.approx(2 * 10.0 / 2)
    clock.update("batch", left=0, seconds=10.0)
    assert clock.seconds_left() == 0.0


def test_durations_that_are_no_number_are_left_out() -> None:
    clock = ConversationClock(2)
    clock.update("batch", left=9, seconds=None)
    clock.update("batch", left=8, seconds="1.0")
    clock.update("batch", left=7, seconds=True)
    assert clock.seconds_left() is None
    clock.update("batch", left=6, seconds=4)
    assert clock.seconds_left() == pytest.approx(6 * 4 / 2)


def test_the_sides_of_a_comparison_share_the_slots() -> None:
    # A: 10 left at 2 s, B: 10 left at 6 s, 4 slots for both: (20 + 60) / 4 = 20 s.
    clock = ConversationClock(4)
    clock.update("a", left=10, seconds=2.0)
    clock.update("b", left=10, seconds=6.0)
    assert clock.seconds_left() == pytest.approx((10 * 2.0 + 10 * 6.0) / 4)
    # A side with no finished run yet is weighed by the mean of all runs.
    clock = ConversationClock(4)
    clock.update("a", left=8, seconds=3.0)
    clock.update("b", left=8)
    assert clock.seconds_left() == pytest.approx((8 * 3.0 + 8 * 3.0) / 4)


def test_the_column_shows_the_estimate() -> None:
    clock = ConversationClock(4)
    column = EtaColumn(clock)
    progress = Progress(column, console=Console(file=io.StringIO()))
    task_id = progress.add_task("conversations", total=60, completed=4)
    task = progress.tasks[0]
    assert column.render(task).plain == "ETA -:--:--"
    for seconds in (2.5, 3.0, 3.5, 3.0):
        clock.update(task_id, left=56, seconds=seconds)
    assert column.render(task).plain == "ETA 0:00:42"
    hours = ConversationClock(1)
    hours.update("batch", left=1, seconds=3603.4)
    assert EtaColumn(hours).render(task).plain == "ETA 1:00:03"
    progress.update(task_id, completed=60)
    assert column.render(task).plain == "ETA 0:00:00"  # a finished task is done
