"""The batch garbage-collector setting: raised while batches run, restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_engine.batch._gc_tuning import BATCH_GC_THRESHOLDS, batch_gc


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_thresholds_are_raised_inside_and_restored_after() -> None:
    with batch_gc():
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_nested_uses_restore_only_when_the_last_one_ends() -> None:
    with batch_gc():
        with batch_gc():
            assert gc.get_threshold() == BATCH_GC_THRESHOLDS
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_set_on_purpose_is_kept() -> None:
    gc.set_threshold(100_000, 5, 100)
    with batch_gc():
        assert gc.get_threshold() == (100_000, 20, 100)
    assert gc.get_threshold() == (100_000, 5, 100)


def test_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), batch_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


async def test_a_batch_runs_with_the_batch_setting(tmp_path: Path) -> None:
    from conversation_engine import BatchProcessor, OpenAIWrapper, load_scenarios
    from conversation_engine.core.settings import get_settings

    seen: list[tuple[int, int, int]] = []
    processor = BatchProcessor(OpenAIWrapper.simulated(), 2, output_dir=tmp_path, evaluate=False)
    try:
        batch_id = processor.create_batch_job(
            load_scenarios(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"),
            prompt_spec_name="multiagent_prompts",
        )
        await processor.run_batch(batch_id, lambda *_: seen.append(gc.get_threshold()))
    finally:
        await processor.aclose()
    assert seen and all(value == BATCH_GC_THRESHOLDS for value in seen)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_full_collection_comes_every_so_many_finished_conversations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The raised thresholds starve full collections; a batch asks for one itself."""
    from conversation_engine.batch import _gc_tuning

    collected: list[tuple[object, ...]] = []
    monkeypatch.setattr(_gc_tuning, "_finished", 0)
    monkeypatch.setattr(_gc_tuning.gc, "collect", lambda *args: collected.append(args))
    every = _gc_tuning.full_collection_every(4)
    assert every == _gc_tuning.FULL_COLLECTION_ROWS
    assert _gc_tuning.full_collection_every(1000) == 4000
    done = [_gc_tuning.conversation_finished(4) for _ in range(2 * every)]
    assert done.count(True) == 2 and done[every - 1] and done[-1]
    assert collected == [(), ()]
